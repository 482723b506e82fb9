package tree

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestManyChildrenAgainstReferenceModel runs the reference model on a parent
// that grows to thousands of children, far past one chunk, with creates all
// over the name range (so they land mid-chunk, at chunk boundaries, before
// the first and after the last child), deletes, and multis that fail and
// roll back, then deletes until the parent is empty again, so chunks split,
// merge and vanish. After every op the touched node and the parent's stat
// must agree with the model; every few ops the parent's whole child list
// must.
func TestManyChildrenAgainstReferenceModel(t *testing.T) {
	seeds := []uint64{1, 2}
	if testing.Short() || raceEnabled {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			m := &bigModel{t: t, r: rand.New(rand.NewPCG(seed, 99)), tr: New(), ref: newRef()}
			m.op(Op{Kind: OpCreate, Path: "/q"})
			m.op(Op{Kind: OpCreate, Path: "/r"})
			target := 2500 + m.r.IntN(1000)
			for m.size() < target {
				m.randomStep(0.7)
			}
			m.compareAll("after growing")
			if got := len(m.tr.lookup("/q").kids); got < 8 {
				t.Fatalf("the parent grew to only %d chunks; the test no longer crosses chunk boundaries", got)
			}
			for m.size() > 100 {
				m.randomStep(0.2)
			}
			// Drain the rest in random order: the last chunks merge and go.
			m.compareParent("before draining")
			rest := m.known
			m.r.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
			for _, name := range rest {
				m.op(Op{Kind: OpDelete, Path: "/q/" + name, Version: -1})
			}
			m.compareParent("after draining")
			m.compareAll("after emptying")
			if got := len(m.tr.lookup("/q").kids); got != 0 {
				t.Fatalf("empty parent still has %d chunks", got)
			}
		})
	}
}

type bigModel struct {
	t     *testing.T
	r     *rand.Rand
	tr    *Tree
	ref   refTree
	zxid  uint64
	known []string // children of /q at the last full comparison
}

func (m *bigModel) size() int { return len(m.known) }

// randomStep does one random op on /q; createShare of the single creates and
// deletes are creates.
func (m *bigModel) randomStep(createShare float64) {
	if m.r.IntN(10) == 0 {
		ops := make([]Op, 2+m.r.IntN(4))
		for i := range ops {
			ops[i] = m.randomOp(createShare)
		}
		m.multi(ops)
	} else {
		m.op(m.randomOp(createShare))
	}
	if m.zxid%40 == 0 {
		m.compareParent(fmt.Sprintf("zxid %d", m.zxid))
	}
}

func (m *bigModel) randomOp(createShare float64) Op {
	r := m.r
	if r.Float64() < createShare {
		switch r.IntN(8) {
		case 0: // sorts after every k name: appends at the end
			return Op{Kind: OpCreate, Path: "/q/s-", Sequential: true}
		case 1: // sorts before every k name, in order: the front chunk
			return Op{Kind: OpCreate, Path: "/q/a-", Sequential: true, Owner: uint64(1 + r.IntN(2))}
		default:
			return Op{Kind: OpCreate, Path: fmt.Sprintf("/q/k%05d", r.IntN(6000)), Data: fmt.Appendf(nil, "%d", r.IntN(100))}
		}
	}
	switch k := r.IntN(10); {
	case k == 0:
		return Op{Kind: OpSet, Path: m.someChild(), Data: []byte("set"), Version: -1}
	case k == 1:
		return Op{Kind: OpCheck, Path: m.someChild(), Version: int64(r.IntN(2)) - 1}
	case k < 5:
		return Op{Kind: OpDelete, Path: fmt.Sprintf("/q/k%05d", r.IntN(6000)), Version: -1}
	default:
		return Op{Kind: OpDelete, Path: m.someChild(), Version: -1}
	}
}

// someChild is a child of /q as of the last full comparison; it may be gone.
func (m *bigModel) someChild() string {
	if len(m.known) == 0 {
		return "/q/none"
	}
	return "/q/" + m.known[m.r.IntN(len(m.known))]
}

func (m *bigModel) op(op Op) {
	m.t.Helper()
	m.zxid++
	desc := fmt.Sprintf("zxid %d Apply(%s)", m.zxid, describeOps([]Op{op}))
	res, ev, err := m.tr.Apply(m.zxid, int64(m.zxid), op)
	wantRes, wantEv, wantErr := m.ref.apply(m.zxid, int64(m.zxid), op)
	if (wantErr == nil) != (err == nil) || (wantErr != nil && !errors.Is(err, wantErr)) {
		m.t.Fatalf("%s: err %v, want %v", desc, err, wantErr)
	}
	if res != wantRes {
		m.t.Fatalf("%s: result %+v, want %+v", desc, res, wantRes)
	}
	compareEvents(m.t, desc, ev, wantEv)
	m.compareTouched(desc, op.Path, res.Path)
}

func (m *bigModel) multi(ops []Op) {
	m.t.Helper()
	m.zxid++
	desc := fmt.Sprintf("zxid %d Multi(%s)", m.zxid, describeOps(ops))
	res, ev, err := m.tr.Multi(m.zxid, int64(m.zxid), ops)
	wantRes, wantEv, wantIdx, wantErr := m.ref.multi(m.zxid, int64(m.zxid), ops)
	if wantErr != nil {
		var oe *OpError
		if !errors.As(err, &oe) || oe.Index != wantIdx || !errors.Is(err, wantErr) {
			m.t.Fatalf("%s: err %v, want index %d %v", desc, err, wantIdx, wantErr)
		}
	} else if err != nil {
		m.t.Fatalf("%s: %v", desc, err)
	}
	if !slices.Equal(res, wantRes) {
		m.t.Fatalf("%s: results %+v, want %+v", desc, res, wantRes)
	}
	compareEvents(m.t, desc, ev, wantEv)
	for i, op := range ops {
		var created string
		if i < len(res) {
			created = res[i].Path
		}
		m.compareTouched(desc, op.Path, created)
	}
}

// compareTouched checks the paths an op named or created, and the stat of
// /q (which includes its child count).
func (m *bigModel) compareTouched(desc string, paths ...string) {
	m.t.Helper()
	seen := map[string]bool{"": true}
	for _, p := range append(paths, "/q") {
		if seen[p] || !refValid(p) {
			continue
		}
		seen[p] = true
		n, want := m.ref[p]
		data, st, err := m.tr.Get(p)
		if (err == nil) != want {
			m.t.Fatalf("%s: Get(%s) err %v, model has it: %v", desc, p, err, want)
		}
		if !want {
			continue
		}
		if wantSt := m.ref.stat(p); st != wantSt || !bytes.Equal(data, n.data) {
			m.t.Fatalf("%s: %s = %q %+v, want %q %+v", desc, p, data, st, n.data, wantSt)
		}
	}
}

// compareParent compares the whole child list of /q and refreshes known.
func (m *bigModel) compareParent(desc string) {
	m.t.Helper()
	want := m.ref.children("/q")
	got, st, err := m.tr.Children("/q")
	if err != nil || !slices.Equal(got, want) || int(st.NumChildren) != len(want) {
		m.t.Fatalf("%s: Children(/q) gives %d names (NumChildren %d, err %v), want %d; first difference at %d",
			desc, len(got), st.NumChildren, err, len(want), firstDiff(got, want))
	}
	m.known = want
	if err := checkChildren(m.tr.root); err != nil {
		m.t.Fatalf("%s: %v", desc, err)
	}
}

// checkChildren verifies the chunk invariants of every node under n.
func checkChildren(n *node) error {
	total := 0
	var prev *node
	for ci, chunk := range n.kids {
		if len(chunk) == 0 || len(chunk) > maxChunk {
			return fmt.Errorf("node %q: chunk %d of %d holds %d children", n.name, ci, len(n.kids), len(chunk))
		}
		for _, c := range chunk {
			if prev != nil && c.name <= prev.name {
				return fmt.Errorf("node %q: child %q in chunk %d follows %q", n.name, c.name, ci, prev.name)
			}
			prev = c
			if err := checkChildren(c); err != nil {
				return err
			}
		}
		total += len(chunk)
	}
	if total != n.numChildren() {
		return fmt.Errorf("node %q: %d children in chunks, count says %d", n.name, total, n.numChildren())
	}
	return nil
}

func (m *bigModel) compareAll(desc string) {
	m.t.Helper()
	m.compareParent(desc)
	compareTrees(m.t, desc, m.tr, m.ref)
	var buf bytes.Buffer
	if err := m.tr.WriteSnapshot(&buf); err != nil {
		m.t.Fatal(err)
	}
	first := bytes.Clone(buf.Bytes())
	back, err := ReadSnapshot(&buf)
	if err != nil {
		m.t.Fatalf("%s: ReadSnapshot: %v", desc, err)
	}
	compareTrees(m.t, desc+", read back from a snapshot", back, m.ref)
	buf.Reset()
	if err := back.WriteSnapshot(&buf); err != nil {
		m.t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), first) {
		m.t.Fatalf("%s: a tree read from a snapshot writes different bytes", desc)
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// goldenTree builds, through the public API only, a tree with a parent of a
// few thousand children made by inserts all over the name range and deletes.
func goldenTree(tb testing.TB) *Tree {
	tb.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	tr := New()
	zxid := uint64(0)
	do := func(op Op) {
		zxid++
		_, _, _ = tr.Apply(zxid, int64(zxid)*3, op)
	}
	do(Op{Kind: OpCreate, Path: "/q", Data: []byte("big")})
	do(Op{Kind: OpCreate, Path: "/r"})
	for range 6000 {
		switch k := r.IntN(10); {
		case k < 6:
			do(Op{Kind: OpCreate, Path: fmt.Sprintf("/q/k%05d", r.IntN(5000)), Data: fmt.Appendf(nil, "%d", r.IntN(1000))})
		case k < 8:
			do(Op{Kind: OpDelete, Path: fmt.Sprintf("/q/k%05d", r.IntN(5000)), Version: -1})
		case k < 9:
			do(Op{Kind: OpCreate, Path: "/q/s-", Sequential: true, Owner: uint64(r.IntN(2))})
		default:
			do(Op{Kind: OpCreate, Path: fmt.Sprintf("/r/x%d", r.IntN(50))})
		}
	}
	return tr
}

// TestSnapshotBytesUnchanged pins the snapshot of goldenTree to the digest
// the earlier one-slice-per-parent implementation wrote: the format and the
// order of children must not depend on how children are stored.
func TestSnapshotBytesUnchanged(t *testing.T) {
	const want = "06013846ce22bcf8c34a2191696ab2c8eebce5d3d37777b12acad64d7f24209e"
	tr := goldenTree(t)
	if _, st, _ := tr.Children("/q"); st.NumChildren != 2923 {
		t.Fatalf("/q has %d children, want 2923: the golden tree is built differently", st.NumChildren)
	}
	h := sha256.New()
	if err := tr.WriteSnapshot(h); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%x", h.Sum(nil)); got != want {
		t.Errorf("snapshot digest %s, want %s", got, want)
	}
}

// TestChildrenAgainstSortedModel hammers one parent with many cheap
// creates and deletes, growing it to about five chunks and shrinking it to a
// few children, several times over, so that splits and merges happen at
// every offset in a chunk. The model is a plain sorted slice.
func TestChildrenAgainstSortedModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	tr := New()
	if _, _, err := tr.Apply(1, 0, Op{Kind: OpCreate, Path: "/q"}); err != nil {
		t.Fatal(err)
	}
	var model []string
	zxid := uint64(1)
	cycles := 6
	if testing.Short() || raceEnabled {
		cycles = 2
	}
	maxChunks := 0
	for cycle := range cycles {
		for _, phase := range []struct {
			createShare float64
			done        func() bool
		}{
			{0.8, func() bool { return len(model) >= 1300 }},
			{0.2, func() bool { return len(model) <= 20 }},
		} {
			for !phase.done() {
				zxid++
				name := fmt.Sprintf("k%04d", r.IntN(3000))
				if r.IntN(4) == 0 && len(model) > 0 {
					name = model[r.IntN(len(model))] // a hit, for deletes
				}
				i, present := slices.BinarySearch(model, name)
				var err, wantErr error
				desc := fmt.Sprintf("cycle %d zxid %d: create %s (present %v)", cycle, zxid, name, present)
				if r.Float64() < phase.createShare {
					_, _, err = tr.Apply(zxid, 0, Op{Kind: OpCreate, Path: "/q/" + name})
					if present {
						wantErr = ErrNodeExists
					} else {
						model = slices.Insert(model, i, name)
					}
				} else {
					desc = strings.Replace(desc, "create", "delete", 1)
					_, _, err = tr.Apply(zxid, 0, Op{Kind: OpDelete, Path: "/q/" + name, Version: -1})
					if present {
						model = slices.Delete(model, i, i+1)
					} else {
						wantErr = ErrNoNode
					}
				}
				if (err == nil) != (wantErr == nil) || !errors.Is(err, wantErr) {
					t.Fatalf("%s: err %v, want %v", desc, err, wantErr)
				}
				if st, _ := tr.Exists("/q"); int(st.NumChildren) != len(model) {
					t.Fatalf("%s: NumChildren %d, want %d", desc, st.NumChildren, len(model))
				}
				if _, ok := tr.Exists("/q/" + name); ok != slices.Contains(model, name) {
					t.Fatalf("%s: Exists gives %v", desc, ok)
				}
				if zxid%25 == 0 {
					got, _, _ := tr.Children("/q")
					if !slices.Equal(got, model) {
						t.Fatalf("%s: Children gives %d names, want %d; first difference at %d", desc, len(got), len(model), firstDiff(got, model))
					}
					if err := checkChildren(tr.root); err != nil {
						t.Fatalf("%s: %v", desc, err)
					}
					maxChunks = max(maxChunks, len(tr.lookup("/q").kids))
				}
			}
		}
	}
	if maxChunks < 5 {
		t.Errorf("the parent reached only %d chunks; the test no longer crosses chunk boundaries", maxChunks)
	}
}

// TestInsertAtEveryOffset fills a parent with three full chunks, in order,
// then inserts one child at each possible offset (before the first child,
// between every two, after the last) on a fresh copy, so every split point
// and every chunk boundary is hit. The model is the sorted name list.
func TestInsertAtEveryOffset(t *testing.T) {
	const n = 3 * maxChunk
	base := New()
	var names []string
	ops := []Op{{Kind: OpCreate, Path: "/q"}}
	for j := range n {
		names = append(names, fmt.Sprintf("k%05d", 10*j+10))
		ops = append(ops, Op{Kind: OpCreate, Path: "/q/" + names[j]})
	}
	if _, _, err := base.Multi(1, 0, ops); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if err := base.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	for j := 0; j <= n; j++ {
		tr, err := ReadSnapshot(bytes.NewReader(snap.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("k%05d", 10*j+5)
		if _, _, err := tr.Apply(2, 0, Op{Kind: OpCreate, Path: "/q/" + name}); err != nil {
			t.Fatalf("insert %s at offset %d: %v", name, j, err)
		}
		want := slices.Insert(slices.Clone(names), j, name)
		got, _, _ := tr.Children("/q")
		if !slices.Equal(got, want) {
			t.Fatalf("insert at offset %d: Children gives %d names, want %d; first difference at %d", j, len(got), len(want), firstDiff(got, want))
		}
		if err := checkChildren(tr.root); err != nil {
			t.Fatalf("insert at offset %d: %v", j, err)
		}
		// Deleting it again must give back the original list.
		if _, _, err := tr.Apply(3, 0, Op{Kind: OpDelete, Path: "/q/" + name, Version: -1}); err != nil {
			t.Fatalf("delete %s at offset %d: %v", name, j, err)
		}
		if got, _, _ := tr.Children("/q"); !slices.Equal(got, names) {
			t.Fatalf("insert and delete at offset %d: Children gives %d names, want %d; first difference at %d", j, len(got), len(names), firstDiff(got, names))
		}
	}
}
