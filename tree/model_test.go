package tree

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The reference model below is deliberately naive and written from the spec,
// not from the implementation: a map from full path to node, children found
// by scanning the whole map, and multi done on a copy of the map.

type refNode struct {
	data                []byte
	czxid, mzxid, pzxid uint64
	ctime, mtime        int64
	version, cversion   int32
	owner               uint64
}

type refTree map[string]refNode

func newRef() refTree {
	return refTree{"/": {}, "/arbor": {}}
}

func refParent(p string) string {
	i := strings.LastIndex(p, "/")
	if i == 0 {
		return "/"
	}
	return p[:i]
}

func (m refTree) children(p string) []string {
	var names []string
	for q := range m {
		if q != "/" && refParent(q) == p {
			names = append(names, q[strings.LastIndex(q, "/")+1:])
		}
	}
	sort.Strings(names)
	return names
}

// numChildren counts without sorting: stat needs only the count.
func (m refTree) numChildren(p string) int {
	k := 0
	for q := range m {
		if q != "/" && refParent(q) == p {
			k++
		}
	}
	return k
}

func (m refTree) stat(p string) Stat {
	n := m[p]
	return Stat{
		Czxid: n.czxid, Mzxid: n.mzxid, Pzxid: n.pzxid, Ctime: n.ctime, Mtime: n.mtime,
		Version: n.version, Cversion: n.cversion, DataLength: int32(len(n.data)),
		NumChildren: int32(m.numChildren(p)), EphemeralOwner: n.owner,
	}
}

func refValid(p string) bool {
	if p == "/" {
		return true
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return false
	}
	for _, c := range strings.Split(p[1:], "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	return true
}

func refReserved(p string) bool { return p == "/arbor" || strings.HasPrefix(p, "/arbor/") }

// postorderLess orders descendants before ancestors, otherwise by the first
// differing component.
func postorderLess(a, b string) bool {
	ca, cb := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(ca) && i < len(cb); i++ {
		if ca[i] != cb[i] {
			return ca[i] < cb[i]
		}
	}
	return len(ca) > len(cb)
}

func (m refTree) bumpParent(p string, zxid uint64) {
	parent := m[refParent(p)]
	parent.cversion++
	parent.pzxid = zxid
	m[refParent(p)] = parent
}

func (m refTree) apply(zxid uint64, now int64, op Op) (Result, []Event, error) {
	versionOK := func(n refNode) bool { return op.Version == -1 || op.Version == int64(n.version) }
	switch op.Kind {
	case OpCreate:
		p := op.Path
		if op.Sequential {
			p += "0000000000"
		}
		switch {
		case !refValid(p):
			return Result{}, nil, ErrBadPath
		case refReserved(p) && !op.System:
			return Result{}, nil, ErrReadOnly
		case len(op.Data) > MaxData:
			return Result{}, nil, ErrTooLarge
		case p == "/":
			return Result{}, nil, ErrNodeExists
		}
		parent, ok := m[refParent(p)]
		if !ok {
			return Result{}, nil, ErrNoNode
		}
		if parent.owner != 0 {
			return Result{}, nil, ErrNoChildrenForEphemerals
		}
		if op.Sequential {
			p = op.Path + fmt.Sprintf("%010d", parent.cversion)
		}
		if _, ok := m[p]; ok {
			return Result{}, nil, ErrNodeExists
		}
		data := op.Data
		if len(data) == 0 {
			data = nil
		}
		m[p] = refNode{data: data, czxid: zxid, mzxid: zxid, pzxid: zxid, ctime: now, mtime: now, owner: op.Owner}
		m.bumpParent(p, zxid)
		return Result{Path: p, Stat: m.stat(p)}, []Event{
			{Type: EventCreated, Path: p, Zxid: zxid, Data: data},
			{Type: EventChildrenChanged, Path: refParent(p), Zxid: zxid},
		}, nil
	case OpSet:
		n, ok := m[op.Path]
		switch {
		case !refValid(op.Path):
			return Result{}, nil, ErrBadPath
		case refReserved(op.Path) && !op.System:
			return Result{}, nil, ErrReadOnly
		case len(op.Data) > MaxData:
			return Result{}, nil, ErrTooLarge
		case !ok:
			return Result{}, nil, ErrNoNode
		case !versionOK(n):
			return Result{}, nil, ErrBadVersion
		}
		n.data = op.Data
		if len(n.data) == 0 {
			n.data = nil
		}
		n.version++
		n.mzxid = zxid
		n.mtime = now
		m[op.Path] = n
		return Result{Stat: m.stat(op.Path)}, []Event{{Type: EventDataChanged, Path: op.Path, Zxid: zxid, Data: n.data}}, nil
	case OpDelete:
		p := op.Path
		n, ok := m[p]
		switch {
		case !refValid(p) || p == "/":
			return Result{}, nil, ErrBadPath
		case refReserved(p) && !op.System:
			return Result{}, nil, ErrReadOnly
		case !ok:
			return Result{}, nil, ErrNoNode
		case !versionOK(n):
			return Result{}, nil, ErrBadVersion
		case m.numChildren(p) > 0 && !op.Recursive:
			return Result{}, nil, ErrNotEmpty
		}
		var gone []string
		for q := range m {
			if q == p || strings.HasPrefix(q, p+"/") {
				gone = append(gone, q)
			}
		}
		sort.Slice(gone, func(i, j int) bool { return postorderLess(gone[i], gone[j]) })
		var events []Event
		for _, q := range gone {
			delete(m, q)
			events = append(events, Event{Type: EventDeleted, Path: q, Zxid: zxid})
		}
		m.bumpParent(p, zxid)
		return Result{}, append(events, Event{Type: EventChildrenChanged, Path: refParent(p), Zxid: zxid}), nil
	case OpCheck:
		n, ok := m[op.Path]
		switch {
		case !refValid(op.Path):
			return Result{}, nil, ErrBadPath
		case refReserved(op.Path) && !op.System:
			return Result{}, nil, ErrReadOnly
		case !ok:
			return Result{}, nil, ErrNoNode
		case !versionOK(n):
			return Result{}, nil, ErrBadVersion
		}
		return Result{}, nil, nil
	}
	return Result{}, nil, ErrBadOp
}

func (m refTree) multi(zxid uint64, now int64, ops []Op) ([]Result, []Event, int, error) {
	work := refTree{}
	for k, v := range m {
		work[k] = v
	}
	var results []Result
	var events []Event
	for i, op := range ops {
		r, ev, err := work.apply(zxid, now, op)
		if err != nil {
			return nil, nil, i, err
		}
		results = append(results, r)
		events = append(events, ev...)
	}
	clear(m)
	for k, v := range work {
		m[k] = v
	}
	return results, events, -1, nil
}

func (m refTree) deleteEphemerals(zxid uint64, owner uint64) []Event {
	var paths []string
	for p, n := range m {
		if n.owner == owner {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var events []Event
	for _, p := range paths {
		delete(m, p)
		m.bumpParent(p, zxid)
		events = append(events, Event{Type: EventDeleted, Path: p, Zxid: zxid},
			Event{Type: EventChildrenChanged, Path: refParent(p), Zxid: zxid})
	}
	return events
}

var (
	modelPaths = []string{"/", "/a", "/b", "/a/x", "/a/y", "/a/x/p", "/b/q", "/b/q/r", "/arbor", "/arbor/m",
		"/a/", "//a", "/a/../b", "/a/s-0000000001", "/b/0000000002"}
	modelSeqPaths = []string{"/a/s-", "/b/", "/a/x/", "/nope/s-"}
	bigData       = make([]byte, MaxData+1)
)

func randOp(r *rand.Rand) Op {
	op := Op{
		Kind:      OpKind(1 + r.IntN(4)),
		Path:      modelPaths[r.IntN(len(modelPaths))],
		Version:   []int64{-1, -1, 0, 1, 2, 7}[r.IntN(6)],
		System:    r.IntN(10) == 0,
		Recursive: r.IntN(3) == 0,
	}
	switch r.IntN(20) {
	case 0:
		op.Data = bigData
	case 1, 2, 3:
	default:
		op.Data = fmt.Appendf(nil, "d%d", r.IntN(100))
	}
	if op.Kind == OpCreate {
		if r.IntN(3) == 0 {
			op.Sequential = true
			op.Path = modelSeqPaths[r.IntN(len(modelSeqPaths))]
		}
		if r.IntN(4) == 0 {
			op.Owner = uint64(1 + r.IntN(3))
		}
	}
	return op
}

func TestAgainstReferenceModel(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 0))
			tr, ref := New(), newRef()
			for step := 1; step <= 400; step++ {
				zxid, now := uint64(step), int64(step)*10
				var desc string
				switch k := r.IntN(20); {
				case k == 0:
					owner := uint64(1 + r.IntN(3))
					desc = fmt.Sprintf("DeleteEphemerals(%d)", owner)
					compareEvents(t, desc, tr.DeleteEphemerals(zxid, now, owner), ref.deleteEphemerals(zxid, owner))
				case k < 6:
					ops := make([]Op, 1+r.IntN(4))
					for i := range ops {
						ops[i] = randOp(r)
					}
					desc = fmt.Sprintf("Multi(%s)", describeOps(ops))
					res, ev, err := tr.Multi(zxid, now, ops)
					wantRes, wantEv, wantIdx, wantErr := ref.multi(zxid, now, ops)
					if wantErr != nil {
						var oe *OpError
						if !errors.As(err, &oe) || oe.Index != wantIdx || !errors.Is(err, wantErr) {
							t.Fatalf("step %d %s: err %v, want index %d %v", step, desc, err, wantIdx, wantErr)
						}
					} else if err != nil {
						t.Fatalf("step %d %s: %v", step, desc, err)
					}
					if !slices.Equal(res, wantRes) {
						t.Fatalf("step %d %s: results %+v, want %+v", step, desc, res, wantRes)
					}
					compareEvents(t, desc, ev, wantEv)
				default:
					op := randOp(r)
					desc = fmt.Sprintf("Apply(%s)", describeOps([]Op{op}))
					res, ev, err := tr.Apply(zxid, now, op)
					wantRes, wantEv, wantErr := ref.apply(zxid, now, op)
					if (wantErr == nil) != (err == nil) || (wantErr != nil && !errors.Is(err, wantErr)) {
						t.Fatalf("step %d %s: err %v, want %v", step, desc, err, wantErr)
					}
					if res != wantRes {
						t.Fatalf("step %d %s: result %+v, want %+v", step, desc, res, wantRes)
					}
					if wantErr == nil {
						compareEvents(t, desc, ev, wantEv)
					}
				}
				compareTrees(t, fmt.Sprintf("step %d after %s", step, desc), tr, ref)
				if step%50 == 0 {
					var buf bytes.Buffer
					if err := tr.WriteSnapshot(&buf); err != nil {
						t.Fatal(err)
					}
					var err error
					if tr, err = ReadSnapshot(&buf); err != nil {
						t.Fatalf("step %d: ReadSnapshot: %v", step, err)
					}
					compareTrees(t, fmt.Sprintf("step %d after snapshot", step), tr, ref)
				}
			}
		})
	}
}

func compareEvents(t *testing.T, desc string, got, want []Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: events %+v, want %+v", desc, got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Type != w.Type || g.Path != w.Path || g.Zxid != w.Zxid || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("%s: event %d = %+v, want %+v", desc, i, g, w)
		}
	}
}

func compareTrees(t *testing.T, desc string, tr *Tree, ref refTree) {
	t.Helper()
	if tr.NumNodes() != len(ref) {
		t.Fatalf("%s: %d nodes, want %d", desc, tr.NumNodes(), len(ref))
	}
	for p, n := range ref {
		data, st, err := tr.Get(p)
		if err != nil {
			t.Fatalf("%s: Get(%s): %v", desc, p, err)
		}
		if want := ref.stat(p); st != want || !bytes.Equal(data, n.data) {
			t.Fatalf("%s: %s = %q %+v, want %q %+v", desc, p, data, st, n.data, want)
		}
		names, _, err := tr.Children(p)
		if want := ref.children(p); err != nil || !slices.Equal(names, want) {
			t.Fatalf("%s: Children(%s) = %v, %v; want %v", desc, p, names, err, want)
		}
	}
	for owner := uint64(1); owner <= 3; owner++ {
		var want []string
		for p, n := range ref {
			if n.owner == owner {
				want = append(want, p)
			}
		}
		sort.Strings(want)
		if got := tr.Ephemerals(owner); !slices.Equal(got, want) {
			t.Fatalf("%s: Ephemerals(%d) = %v, want %v", desc, owner, got, want)
		}
	}
}

func describeOps(ops []Op) string {
	var parts []string
	for _, op := range ops {
		parts = append(parts, fmt.Sprintf("{kind %d %s v%d data %dB owner %d seq %v rec %v sys %v}",
			op.Kind, op.Path, op.Version, len(op.Data), op.Owner, op.Sequential, op.Recursive, op.System))
	}
	return strings.Join(parts, " ")
}
