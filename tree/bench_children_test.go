package tree

import (
	"fmt"
	"runtime"
	"testing"
)

// bigParent returns a tree whose node /p has n children named
// "c%02d-%010d", 64 "clients" of n/64 each. They are created in name order,
// which is cheap for any child structure, so the setup does not dominate.
func bigParent(tb testing.TB, n int) *Tree {
	tb.Helper()
	tr := New()
	if _, _, err := tr.Apply(1, 0, Op{Kind: OpCreate, Path: "/p"}); err != nil {
		tb.Fatal(err)
	}
	per := n / 64
	for c := range 64 {
		for j := range per {
			op := Op{Kind: OpCreate, Path: fmt.Sprintf("/p/c%02d-%010d", c, c*per+j)}
			if _, _, err := tr.Apply(uint64(2+c*per+j), 0, op); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return tr
}

// batch is how many children a benchmark creates (or deletes) before it
// undoes them with the timer stopped, so the parent stays at its size.
const batch = 1000

// BenchmarkCreateManyChildren creates sequential children under a parent
// that already has n children. "append" is one client: every name sorts
// last. "64clients" is 64 clients with their own prefixes, so every create
// lands in the middle of the parent. ns/op should not grow with n.
func BenchmarkCreateManyChildren(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		tr := bigParent(b, n)
		for _, pattern := range []string{"append", "64clients"} {
			b.Run(fmt.Sprintf("n=%d/%s", n, pattern), func(b *testing.B) {
				zxid := uint64(10 * n)
				created := make([]string, 0, batch)
				undo := func() {
					for _, p := range created {
						zxid++
						if _, _, err := tr.Apply(zxid, 0, Op{Kind: OpDelete, Path: p, Version: -1}); err != nil {
							b.Fatal(err)
						}
					}
					created = created[:0]
				}
				i := 0
				for b.Loop() {
					prefix := "/p/z-"
					if pattern == "64clients" {
						prefix = fmt.Sprintf("/p/c%02d-", i%64)
					}
					i++
					zxid++
					res, _, err := tr.Apply(zxid, 0, Op{Kind: OpCreate, Path: prefix, Sequential: true})
					if err != nil {
						b.Fatal(err)
					}
					created = append(created, res.Path)
					if len(created) == batch {
						b.StopTimer()
						undo()
						b.StartTimer()
					}
				}
				b.StopTimer()
				undo()
				if st, _ := tr.Exists("/p"); int(st.NumChildren) != n/64*64 {
					b.Fatalf("parent has %d children after the benchmark, want %d", st.NumChildren, n/64*64)
				}
			})
		}
	}
}

// BenchmarkDeleteManyChildren deletes children spread over a parent that has
// n children, recreating each batch with the timer stopped.
func BenchmarkDeleteManyChildren(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		tr := bigParent(b, n)
		per := n / 64
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			zxid := uint64(10 * n)
			deleted := make([]string, 0, batch)
			redo := func() {
				for _, p := range deleted {
					zxid++
					if _, _, err := tr.Apply(zxid, 0, Op{Kind: OpCreate, Path: p}); err != nil {
						b.Fatal(err)
					}
				}
				deleted = deleted[:0]
			}
			i := 0
			for b.Loop() {
				// A stride coprime with n/64*64 visits children all over the
				// parent; a batch never deletes the same child twice.
				k := (i * 7919) % (per * 64)
				i++
				p := fmt.Sprintf("/p/c%02d-%010d", k/per, k)
				zxid++
				if _, _, err := tr.Apply(zxid, 0, Op{Kind: OpDelete, Path: p, Version: -1}); err != nil {
					b.Fatal(err)
				}
				deleted = append(deleted, p)
				if len(deleted) == batch {
					b.StopTimer()
					redo()
					b.StartTimer()
				}
			}
			b.StopTimer()
			redo()
		})
	}
}

// BenchmarkChildrenLarge lists a parent of 100k children.
func BenchmarkChildrenLarge(b *testing.B) {
	tr := bigParent(b, 100_000)
	for b.Loop() {
		if _, _, err := tr.Children("/p"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryPerNodeBigParent reports the heap per node beyond name and
// data when 64 clients create sequential nodes under one parent, so that
// chunks split in the middle rather than fill in order.
func BenchmarkMemoryPerNodeBigParent(b *testing.B) {
	var per float64
	for b.Loop() {
		before := heapInUse()
		tr := New()
		if _, _, err := tr.Apply(1, 0, Op{Kind: OpCreate, Path: "/p"}); err != nil {
			b.Fatal(err)
		}
		const n = 100_000
		payload := 0
		for i := range n {
			op := Op{Kind: OpCreate, Path: fmt.Sprintf("/p/c%02d-", i%64), Sequential: true, Data: make([]byte, 100)}
			res, _, err := tr.Apply(uint64(i+2), 0, op)
			if err != nil {
				b.Fatal(err)
			}
			payload += len(res.Path) - len("/p/") + 100
		}
		after := heapInUse()
		runtime.KeepAlive(tr)
		per = (float64(after) - float64(before) - float64(payload)) / n
	}
	b.ReportMetric(per, "bytes/node")
}
