package tree

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"testing"
)

// fill creates n nodes of dataLen bytes spread over parents, returning the
// tree and the name and data bytes it was given.
func fill(tb testing.TB, n, parents, dataLen int) (*Tree, int) {
	tb.Helper()
	tr := New()
	zxid := uint64(1)
	for p := range parents {
		if _, _, err := tr.Apply(zxid, 0, Op{Kind: OpCreate, Path: fmt.Sprintf("/p%d", p)}); err != nil {
			tb.Fatal(err)
		}
		zxid++
	}
	payload := 0
	for i := range n {
		name := fmt.Sprintf("n%07d", i)
		op := Op{Kind: OpCreate, Path: fmt.Sprintf("/p%d/%s", i%parents, name), Data: make([]byte, dataLen)}
		if _, _, err := tr.Apply(zxid, int64(zxid), op); err != nil {
			tb.Fatal(err)
		}
		zxid++
		payload += len(name) + dataLen
	}
	return tr, payload
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// bytesPerNode measures the heap a tree of n nodes holds beyond the names
// and data it was given.
func bytesPerNode(tb testing.TB, n int) float64 {
	before := heapInUse()
	tr, payload := fill(tb, n, 4, 100)
	after := heapInUse()
	runtime.KeepAlive(tr)
	return (float64(after) - float64(before) - float64(payload)) / float64(n)
}

// TestMemoryPerNode holds the tree to its budget of 300 bytes per node
// beyond its name and data.
func TestMemoryPerNode(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("memory measurement needs a full, uninstrumented run")
	}
	if got := bytesPerNode(t, 100_000); got > 300 {
		t.Errorf("%.0f bytes/node beyond name and data, want at most 300", got)
	} else {
		t.Logf("%.0f bytes/node beyond name and data", got)
	}
}

func BenchmarkMemoryPerNode(b *testing.B) {
	var per float64
	for b.Loop() {
		per = bytesPerNode(b, 100_000)
	}
	b.ReportMetric(per, "bytes/node")
}

func BenchmarkCreate(b *testing.B) {
	tr := New()
	if _, _, err := tr.Apply(1, 0, Op{Kind: OpCreate, Path: "/p"}); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 100)
	i := 0
	for b.Loop() {
		i++
		if _, _, err := tr.Apply(uint64(i+1), 0, Op{Kind: OpCreate, Path: fmt.Sprintf("/p/n%09d", i), Data: data}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSet(b *testing.B) {
	tr, _ := fill(b, 10_000, 4, 100)
	data := make([]byte, 100)
	paths := make([]string, 10_000)
	for i := range paths {
		paths[i] = fmt.Sprintf("/p%d/n%07d", i%4, i)
	}
	i := 0
	for b.Loop() {
		i++
		if _, _, err := tr.Apply(uint64(20_000+i), 0, Op{Kind: OpSet, Path: paths[i%len(paths)], Data: data, Version: -1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	// 100k children under one parent: lookups must stay fast.
	tr, _ := fill(b, 100_000, 1, 100)
	paths := make([]string, 1000)
	for i := range paths {
		paths[i] = fmt.Sprintf("/p0/n%07d", i*97)
	}
	i := 0
	for b.Loop() {
		i++
		if _, _, err := tr.Get(paths[i%len(paths)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChildren(b *testing.B) {
	tr, _ := fill(b, 1000, 1, 10)
	for b.Loop() {
		if _, _, err := tr.Children("/p0"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSnapshotWrite(b *testing.B) {
	tr, payload := fill(b, 100_000, 4, 100)
	b.SetBytes(int64(payload))
	for b.Loop() {
		if err := tr.WriteSnapshot(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSnapshotRead(b *testing.B) {
	tr, payload := fill(b, 100_000, 4, 100)
	var buf bytes.Buffer
	if err := tr.WriteSnapshot(&buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(payload))
	for b.Loop() {
		if _, err := ReadSnapshot(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
