package tree

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// mustApply applies op and fails the test on error.
func mustApply(t *testing.T, tr *Tree, zxid uint64, op Op) (Result, []Event) {
	t.Helper()
	r, ev, err := tr.Apply(zxid, int64(zxid)*1000, op)
	if err != nil {
		t.Fatalf("Apply(%d, %+v): %v", zxid, op, err)
	}
	return r, ev
}

func create(p string, data string) Op {
	return Op{Kind: OpCreate, Path: p, Data: []byte(data), Version: -1}
}

func mustStat(t *testing.T, tr *Tree, p string) Stat {
	t.Helper()
	st, ok := tr.Exists(p)
	if !ok {
		t.Fatalf("%s does not exist", p)
	}
	return st
}

func TestNew(t *testing.T) {
	tr := New()
	if got := tr.NumNodes(); got != 2 {
		t.Errorf("NumNodes = %d, want 2", got)
	}
	names, st, err := tr.Children("/")
	if err != nil || !slices.Equal(names, []string{"arbor"}) || st.NumChildren != 1 {
		t.Errorf(`Children("/") = %v, %+v, %v; want [arbor]`, names, st, err)
	}
	if _, ok := tr.Exists(Reserved); !ok {
		t.Errorf("%s missing", Reserved)
	}
}

func TestCreateStat(t *testing.T) {
	tr := New()
	r, ev := mustApply(t, tr, 5, create("/a", "hello"))
	want := Stat{Czxid: 5, Mzxid: 5, Pzxid: 5, Ctime: 5000, Mtime: 5000, DataLength: 5}
	if r.Path != "/a" || r.Stat != want {
		t.Errorf("create result = %+v, want /a %+v", r, want)
	}
	wantEv := []Event{
		{Type: EventCreated, Path: "/a", Zxid: 5, Data: []byte("hello")},
		{Type: EventChildrenChanged, Path: "/", Zxid: 5},
	}
	if !reflect.DeepEqual(ev, wantEv) {
		t.Errorf("events = %+v, want %+v", ev, wantEv)
	}
	root := mustStat(t, tr, "/")
	if root.Cversion != 1 || root.Pzxid != 5 || root.Mzxid != 0 || root.NumChildren != 2 {
		t.Errorf("root stat after create = %+v, want cversion 1, pzxid 5, mzxid 0, 2 children", root)
	}

	mustApply(t, tr, 6, create("/a/b", ""))
	mustApply(t, tr, 7, Op{Kind: OpDelete, Path: "/a/b", Version: -1})
	a := mustStat(t, tr, "/a")
	if a.Cversion != 2 || a.Pzxid != 7 || a.Mzxid != 5 || a.Version != 0 || a.NumChildren != 0 {
		t.Errorf("/a stat after child create+delete = %+v, want cversion 2, pzxid 7, mzxid 5", a)
	}
}

func TestSetStat(t *testing.T) {
	tr := New()
	mustApply(t, tr, 1, create("/a", "x"))
	r, ev := mustApply(t, tr, 9, Op{Kind: OpSet, Path: "/a", Data: []byte("yz"), Version: 0})
	want := Stat{Czxid: 1, Mzxid: 9, Pzxid: 1, Ctime: 1000, Mtime: 9000, Version: 1, DataLength: 2}
	if r.Stat != want || r.Path != "" {
		t.Errorf("set result = %+v, want stat %+v", r, want)
	}
	if !reflect.DeepEqual(ev, []Event{{Type: EventDataChanged, Path: "/a", Zxid: 9, Data: []byte("yz")}}) {
		t.Errorf("set events = %+v", ev)
	}
	data, st, err := tr.Get("/a")
	if err != nil || string(data) != "yz" || st != want {
		t.Errorf("Get = %q, %+v, %v", data, st, err)
	}
	if _, _, err := tr.Apply(10, 0, Op{Kind: OpSet, Path: "/a", Version: 0}); !errors.Is(err, ErrBadVersion) {
		t.Errorf("set with stale version: %v, want ErrBadVersion", err)
	}
	mustApply(t, tr, 11, Op{Kind: OpSet, Path: "/", Data: []byte("r"), Version: -1})
}

func TestSequential(t *testing.T) {
	tr := New()
	mustApply(t, tr, 1, create("/q", ""))
	mustApply(t, tr, 2, create("/q/other", ""))
	seq := Op{Kind: OpCreate, Path: "/q/item-", Sequential: true}
	var got []string
	for z := uint64(3); z < 6; z++ {
		r, ev := mustApply(t, tr, z, seq)
		got = append(got, r.Path)
		if ev[0].Path != r.Path {
			t.Errorf("created event path %q, want %q", ev[0].Path, r.Path)
		}
	}
	want := []string{"/q/item-0000000001", "/q/item-0000000002", "/q/item-0000000003"}
	if !slices.Equal(got, want) {
		t.Errorf("sequential paths = %v, want %v", got, want)
	}
	// Deleting a child still bumps cversion, so numbers are never reused.
	mustApply(t, tr, 6, Op{Kind: OpDelete, Path: "/q/item-0000000003", Version: -1})
	r, _ := mustApply(t, tr, 7, seq)
	if r.Path != "/q/item-0000000005" {
		t.Errorf("after a delete: %q, want /q/item-0000000005", r.Path)
	}
	r, _ = mustApply(t, tr, 8, Op{Kind: OpCreate, Path: "/q/", Sequential: true})
	if r.Path != "/q/0000000006" {
		t.Errorf("sequential with empty prefix: %q", r.Path)
	}
	// The suffix counts toward the length limit.
	long := "/q/" + strings.Repeat("x", MaxPath-3-5)
	if _, _, err := tr.Apply(9, 0, Op{Kind: OpCreate, Path: long, Sequential: true}); !errors.Is(err, ErrBadPath) {
		t.Errorf("sequential over the limit only with suffix: %v, want ErrBadPath", err)
	}
}

func TestApplyErrors(t *testing.T) {
	setup := func(t *testing.T) *Tree {
		tr := New()
		mustApply(t, tr, 1, create("/a", "x"))
		mustApply(t, tr, 2, create("/a/b", ""))
		mustApply(t, tr, 3, Op{Kind: OpCreate, Path: "/e", Owner: 7})
		return tr
	}
	tests := []struct {
		name string
		op   Op
		want error
	}{
		{"create bad path", create("/a/", ""), ErrBadPath},
		{"create missing parent", create("/x/y", ""), ErrNoNode},
		{"create existing", create("/a", ""), ErrNodeExists},
		{"create root", create("/", ""), ErrNodeExists},
		{"create under ephemeral", create("/e/c", ""), ErrNoChildrenForEphemerals},
		{"create too large", Op{Kind: OpCreate, Path: "/big", Data: make([]byte, MaxData+1)}, ErrTooLarge},
		{"create reserved", create("/arbor/x", ""), ErrReadOnly},
		{"create reserved itself", create("/arbor", ""), ErrReadOnly},
		{"set missing", Op{Kind: OpSet, Path: "/nope", Version: -1}, ErrNoNode},
		{"set bad version", Op{Kind: OpSet, Path: "/a", Version: 3}, ErrBadVersion},
		{"set too large", Op{Kind: OpSet, Path: "/a", Version: -1, Data: make([]byte, MaxData+1)}, ErrTooLarge},
		{"set reserved", Op{Kind: OpSet, Path: "/arbor", Version: -1}, ErrReadOnly},
		{"set bad path", Op{Kind: OpSet, Path: "a", Version: -1}, ErrBadPath},
		{"delete missing", Op{Kind: OpDelete, Path: "/nope", Version: -1}, ErrNoNode},
		{"delete not empty", Op{Kind: OpDelete, Path: "/a", Version: -1}, ErrNotEmpty},
		{"delete bad version", Op{Kind: OpDelete, Path: "/a/b", Version: 1}, ErrBadVersion},
		{"delete recursive bad version", Op{Kind: OpDelete, Path: "/a", Version: 2, Recursive: true}, ErrBadVersion},
		{"delete root", Op{Kind: OpDelete, Path: "/", Version: -1, Recursive: true}, ErrBadPath},
		{"delete root as system", Op{Kind: OpDelete, Path: "/", Version: -1, System: true}, ErrBadPath},
		{"delete reserved", Op{Kind: OpDelete, Path: "/arbor", Version: -1}, ErrReadOnly},
		{"check missing", Op{Kind: OpCheck, Path: "/nope", Version: -1}, ErrNoNode},
		{"check bad version", Op{Kind: OpCheck, Path: "/a", Version: 1}, ErrBadVersion},
		{"check reserved", Op{Kind: OpCheck, Path: "/arbor/x", Version: -1}, ErrReadOnly},
		{"unknown kind", Op{Kind: 99, Path: "/a"}, ErrBadOp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := setup(t)
			before := snapshotBytes(t, tr)
			r, ev, err := tr.Apply(10, 10, tt.op)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Apply(%+v) = %v, want %v", tt.op, err, tt.want)
			}
			var oe *OpError
			if errors.As(err, &oe) {
				t.Errorf("Apply returned an *OpError: %v", err)
			}
			if r != (Result{}) || len(ev) != 0 {
				t.Errorf("failed Apply returned %+v, %v", r, ev)
			}
			if after := snapshotBytes(t, tr); string(after) != string(before) {
				t.Errorf("failed Apply changed the tree")
			}
		})
	}
	tr := setup(t)
	if _, _, err := tr.Apply(11, 0, Op{Kind: OpDelete, Path: "/", Version: -1}); err == nil || !strings.Contains(err.Error(), "cannot delete the root") {
		t.Errorf("delete root message: %v", err)
	}
}

func TestReservedSystem(t *testing.T) {
	tr := New()
	mustApply(t, tr, 1, Op{Kind: OpCreate, Path: "/arbor/members", System: true})
	mustApply(t, tr, 2, Op{Kind: OpSet, Path: "/arbor/members", Data: []byte("m"), Version: 0, System: true})
	mustApply(t, tr, 3, Op{Kind: OpCheck, Path: "/arbor/members", Version: 1, System: true})
	mustApply(t, tr, 4, Op{Kind: OpDelete, Path: "/arbor/members", Version: -1, System: true})
	// Only /arbor and below is reserved, not every name starting with it.
	mustApply(t, tr, 5, create("/arborist", ""))
	mustApply(t, tr, 6, Op{Kind: OpCreate, Path: "/arbor", Sequential: true})
}

func TestRecursiveDelete(t *testing.T) {
	tr := New()
	for i, p := range []string{"/top", "/top/a", "/top/a/x", "/top/b", "/top/a/y"} {
		mustApply(t, tr, uint64(i+1), create(p, ""))
	}
	mustApply(t, tr, 6, Op{Kind: OpCreate, Path: "/top/b/e", Owner: 3})
	_, ev := mustApply(t, tr, 7, Op{Kind: OpDelete, Path: "/top", Version: 0, Recursive: true})
	var got []string
	for _, e := range ev {
		if e.Zxid != 7 {
			t.Errorf("event %+v has zxid %d, want 7", e, e.Zxid)
		}
		got = append(got, map[EventType]string{EventDeleted: "deleted ", EventChildrenChanged: "children "}[e.Type]+e.Path)
	}
	want := []string{"deleted /top/a/x", "deleted /top/a/y", "deleted /top/a", "deleted /top/b/e", "deleted /top/b", "deleted /top", "children /"}
	if !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
	if tr.NumNodes() != 2 || len(tr.Ephemerals(3)) != 0 || len(tr.Owners()) != 0 {
		t.Errorf("after recursive delete: %d nodes, ephemerals %v", tr.NumNodes(), tr.Ephemerals(3))
	}
	if root := mustStat(t, tr, "/"); root.Cversion != 2 || root.Pzxid != 7 {
		t.Errorf("root stat %+v, want cversion 2 pzxid 7", root)
	}
}

func TestEphemerals(t *testing.T) {
	tr := New()
	mustApply(t, tr, 1, create("/s", ""))
	for i, p := range []string{"/s/b", "/s/a", "/e"} {
		r, _ := mustApply(t, tr, uint64(i+2), Op{Kind: OpCreate, Path: p, Owner: 42})
		if r.Stat.EphemeralOwner != 42 {
			t.Errorf("%s owner %d", p, r.Stat.EphemeralOwner)
		}
	}
	mustApply(t, tr, 5, Op{Kind: OpCreate, Path: "/s/other", Owner: 43})
	mustApply(t, tr, 6, Op{Kind: OpDelete, Path: "/s/b", Version: -1})
	if got := tr.Ephemerals(42); !slices.Equal(got, []string{"/e", "/s/a"}) {
		t.Errorf("Ephemerals(42) = %v", got)
	}
	if got := tr.Owners(); !slices.Equal(got, []uint64{42, 43}) {
		t.Errorf("Owners = %v", got)
	}
	ev := tr.DeleteEphemerals(7, 7000, 42)
	if len(ev) != 4 || ev[0].Path != "/e" || ev[2].Path != "/s/a" || ev[3].Path != "/s" {
		t.Errorf("DeleteEphemerals events = %+v", ev)
	}
	for _, p := range []string{"/e", "/s/a"} {
		if _, ok := tr.Exists(p); ok {
			t.Errorf("%s survived DeleteEphemerals", p)
		}
	}
	if got := tr.Ephemerals(42); len(got) != 0 {
		t.Errorf("Ephemerals(42) after delete = %v", got)
	}
	if ev := tr.DeleteEphemerals(8, 0, 42); len(ev) != 0 {
		t.Errorf("second DeleteEphemerals = %v", ev)
	}
	if _, ok := tr.Exists("/s/other"); !ok {
		t.Errorf("another session's ephemeral was deleted")
	}
}

func TestFlagsIndexes(t *testing.T) {
	tr := New()
	mustApply(t, tr, 1, Op{Kind: OpCreate, Path: "/c", Container: true})
	mustApply(t, tr, 2, Op{Kind: OpCreate, Path: "/t", TTLMs: 500})
	if c, ttl, ok := tr.Flags("/c"); !c || ttl != 0 || !ok {
		t.Errorf("Flags(/c) = %v %v %v", c, ttl, ok)
	}
	if c, ttl, ok := tr.Flags("/t"); c || ttl != 500 || !ok {
		t.Errorf("Flags(/t) = %v %v %v", c, ttl, ok)
	}
	if !slices.Equal(tr.Containers(), []string{"/c"}) || !slices.Equal(tr.TTLNodes(), []string{"/t"}) {
		t.Errorf("Containers %v TTLNodes %v", tr.Containers(), tr.TTLNodes())
	}
	mustApply(t, tr, 3, Op{Kind: OpDelete, Path: "/c", Version: -1})
	if len(tr.Containers()) != 0 {
		t.Errorf("Containers after delete = %v", tr.Containers())
	}
}

func TestReadErrors(t *testing.T) {
	tr := New()
	if _, _, err := tr.Get("/nope"); !errors.Is(err, ErrNoNode) {
		t.Errorf("Get missing: %v", err)
	}
	if _, _, err := tr.Get("bad"); !errors.Is(err, ErrBadPath) {
		t.Errorf("Get bad path: %v", err)
	}
	if _, _, err := tr.Children("/nope"); !errors.Is(err, ErrNoNode) {
		t.Errorf("Children missing: %v", err)
	}
	if _, ok := tr.Exists("//"); ok {
		t.Errorf("Exists(//) = true")
	}
}
