package tree

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

func snapBytes(t *testing.T, write func(w *bytes.Buffer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// randomOp draws a create, set, delete or multi over a small path space, so
// that ops often hit the same nodes and parents.
func randomOp(rng *rand.Rand) []Op {
	path := func() string {
		p := ""
		for range 1 + rng.IntN(3) {
			p += fmt.Sprintf("/%c", 'a'+rng.IntN(3))
		}
		return p
	}
	one := func() Op {
		switch rng.IntN(5) {
		case 0, 1:
			return Op{Kind: OpCreate, Path: path(), Data: []byte{byte(rng.IntN(256))}, Version: -1, Sequential: rng.IntN(4) == 0}
		case 2:
			return Op{Kind: OpSet, Path: path(), Data: []byte{byte(rng.IntN(256))}, Version: -1}
		case 3:
			return Op{Kind: OpDelete, Path: path(), Version: -1, Recursive: rng.IntN(2) == 0}
		default:
			return Op{Kind: OpCheck, Path: path(), Version: int64(rng.IntN(2))}
		}
	}
	if rng.IntN(4) == 0 {
		ops := make([]Op, 2+rng.IntN(3))
		for i := range ops {
			ops[i] = one()
		}
		return ops
	}
	return []Op{one()}
}

// A view keeps the tree as it was when taken, byte for byte, however the
// tree changes afterwards (creates, sets, deletes, multis that roll back);
// and taking views does not change what the tree itself becomes.
func TestViewIsPointInTime(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		withViews, plain := New(), New()
		type taken struct {
			v    *View
			want []byte
		}
		var views []taken
		for i := range 600 {
			ops := randomOp(rng)
			zxid := uint64(i + 1)
			_, _, err1 := withViews.Multi(zxid, int64(i), ops)
			_, _, err2 := plain.Multi(zxid, int64(i), ops)
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("seed %d op %d: %v vs %v", seed, i, err1, err2)
			}
			if rng.IntN(25) == 0 {
				v := withViews.View()
				views = append(views, taken{v, snapBytes(t, func(b *bytes.Buffer) error { return withViews.WriteSnapshot(b) })})
				if v.NumNodes() != withViews.NumNodes() {
					t.Fatalf("view holds %d nodes, tree %d", v.NumNodes(), withViews.NumNodes())
				}
			}
		}
		for j, tk := range views {
			if got := snapBytes(t, func(b *bytes.Buffer) error { return tk.v.WriteSnapshot(b) }); !bytes.Equal(got, tk.want) {
				t.Fatalf("seed %d: view %d changed after it was taken", seed, j)
			}
		}
		a := snapBytes(t, func(b *bytes.Buffer) error { return withViews.WriteSnapshot(b) })
		b := snapBytes(t, func(b *bytes.Buffer) error { return plain.WriteSnapshot(b) })
		if !bytes.Equal(a, b) {
			t.Fatalf("seed %d: a tree with views differs from one without", seed)
		}
		if len(views) == 0 {
			t.Fatalf("seed %d took no view", seed)
		}
	}
}

// A view of a big parent stays intact while children are added and
// removed under it (the chunks are copied, not shared).
func TestViewOfBigParent(t *testing.T) {
	tr := New()
	mustApply := func(zxid uint64, op Op) {
		t.Helper()
		if _, _, err := tr.Apply(zxid, 0, op); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(1, Op{Kind: OpCreate, Path: "/p", Version: -1})
	z := uint64(2)
	for i := range 3 * maxChunk {
		mustApply(z, Op{Kind: OpCreate, Path: fmt.Sprintf("/p/%05d", i), Version: -1})
		z++
	}
	v := tr.View()
	want := snapBytes(t, func(b *bytes.Buffer) error { return tr.WriteSnapshot(b) })
	for i := 0; i < 3*maxChunk; i += 2 {
		mustApply(z, Op{Kind: OpDelete, Path: fmt.Sprintf("/p/%05d", i), Version: -1})
		mustApply(z+1, Op{Kind: OpCreate, Path: fmt.Sprintf("/p/%05d-x", i), Version: -1})
		z += 2
	}
	if got := snapBytes(t, func(b *bytes.Buffer) error { return v.WriteSnapshot(b) }); !bytes.Equal(got, want) {
		t.Fatal("the view of a big parent changed")
	}
}

func BenchmarkSetWithView(b *testing.B) {
	tr := New()
	for i := range 1000 {
		if _, _, err := tr.Apply(uint64(i+1), 0, Op{Kind: OpCreate, Path: fmt.Sprintf("/n%d", i), Version: -1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if i%10000 == 0 {
			_ = tr.View() // a snapshot every 10,000 writes
		}
		if _, _, err := tr.Apply(uint64(i+2000), 0, Op{Kind: OpSet, Path: fmt.Sprintf("/n%d", i%1000), Version: -1}); err != nil {
			b.Fatal(err)
		}
	}
}
