package tree

import (
	"bytes"
	"errors"
	"testing"
)

func snapshotBytes(t testing.TB, tr *Tree) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := tr.WriteSnapshot(&buf); err != nil {
		t.Fatalf("WriteSnapshot: %v", err)
	}
	return buf.Bytes()
}

func TestMultiSeesEarlierOps(t *testing.T) {
	tr := New()
	mustApply(t, tr, 1, create("/x", "0"))
	ops := []Op{
		create("/a", "1"),
		create("/a/b", "2"),
		{Kind: OpSet, Path: "/x", Data: []byte("3"), Version: 0},
		{Kind: OpCheck, Path: "/x", Version: 1},
		{Kind: OpCreate, Path: "/a/s-", Sequential: true},
		{Kind: OpDelete, Path: "/a/b", Version: 0},
	}
	res, ev, err := tr.Multi(2, 2000, ops)
	if err != nil {
		t.Fatalf("Multi: %v", err)
	}
	if len(res) != len(ops) || res[0].Path != "/a" || res[1].Path != "/a/b" || res[2].Stat.Version != 1 ||
		res[3] != (Result{}) || res[4].Path != "/a/s-0000000001" || res[5] != (Result{}) {
		t.Errorf("results = %+v", res)
	}
	if len(ev) != 2+2+1+2+2 {
		t.Errorf("%d events, want 9: %+v", len(ev), ev)
	}
	a := mustStat(t, tr, "/a")
	if a.Cversion != 3 || a.Pzxid != 2 || a.NumChildren != 1 {
		t.Errorf("/a stat %+v", a)
	}
}

// TestMultiAtomicity fails a multi at every index in turn and checks that the
// tree is byte-for-byte what it was.
func TestMultiAtomicity(t *testing.T) {
	tr := New()
	mustApply(t, tr, 1, create("/p", "p"))
	mustApply(t, tr, 2, create("/p/c", "c"))
	mustApply(t, tr, 3, create("/d", ""))
	mustApply(t, tr, 4, create("/d/x", ""))
	mustApply(t, tr, 5, Op{Kind: OpCreate, Path: "/d/x/e", Owner: 9})
	for _, good := range [][]Op{good1, good2} {
		failEverywhere(t, tr, good)
	}
	if _, _, err := tr.Multi(11, 11000, good1); err != nil {
		t.Fatalf("good multi: %v", err)
	}
}

var (
	good1 = []Op{
		create("/n", "new"),
		create("/n/m", ""),
		{Kind: OpCreate, Path: "/n/e", Owner: 9},
		{Kind: OpCreate, Path: "/n/c", Container: true, TTLMs: 5},
		{Kind: OpSet, Path: "/p", Data: []byte("changed"), Version: 0},
		{Kind: OpCheck, Path: "/p", Version: 1},
		{Kind: OpDelete, Path: "/d", Version: -1, Recursive: true},
		{Kind: OpCreate, Path: "/p/s", Sequential: true},
		{Kind: OpDelete, Path: "/p/c", Version: 0},
	}
	// Only deletes and a set: each undo must restore what it changed by itself.
	good2 = []Op{
		{Kind: OpDelete, Path: "/d", Version: 0, Recursive: true},
		{Kind: OpSet, Path: "/p", Data: []byte("changed"), Version: 0},
		{Kind: OpDelete, Path: "/p/c", Version: 0},
	}
)

func failEverywhere(t *testing.T, tr *Tree, good []Op) {
	t.Helper()
	before := snapshotBytes(t, tr)
	for fail := 0; fail <= len(good); fail++ {
		ops := append([]Op(nil), good[:fail]...)
		ops = append(ops, create("/missing/x", ""))
		ops = append(ops, good[fail:]...)
		res, ev, err := tr.Multi(10, 10000, ops)
		var oe *OpError
		if !errors.As(err, &oe) || oe.Index != fail || !errors.Is(err, ErrNoNode) {
			t.Fatalf("fail at %d: err = %v, want *OpError{%d, ErrNoNode}", fail, err, fail)
		}
		if res != nil || ev != nil {
			t.Errorf("fail at %d: returned %v, %v", fail, res, ev)
		}
		if after := snapshotBytes(t, tr); !bytes.Equal(before, after) {
			t.Fatalf("fail at %d: tree changed", fail)
		}
		if tr.NumNodes() != 7 || len(tr.Ephemerals(9)) != 1 || len(tr.Containers()) != 0 || len(tr.TTLNodes()) != 0 {
			t.Fatalf("fail at %d: indexes changed: %d nodes, %v, %v", fail, tr.NumNodes(), tr.Ephemerals(9), tr.Containers())
		}
	}
}

func TestMultiEmpty(t *testing.T) {
	tr := New()
	res, ev, err := tr.Multi(1, 0, nil)
	if err != nil || len(res) != 0 || len(ev) != 0 {
		t.Errorf("empty multi = %v, %v, %v", res, ev, err)
	}
}
