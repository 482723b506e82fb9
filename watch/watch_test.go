package watch

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/arbor-db/arbor/tree"
)

// fired renders matches as "id:type:path" (plus "=data" when data is set),
// so a table can say exactly what fires.
func fired(fs []Fired[string]) []string {
	var out []string
	for _, f := range fs {
		s := fmt.Sprintf("%s:%s:%s", f.Owner, typeName(f.Event.Type), f.Event.Path)
		if f.Event.Data != nil {
			s += "=" + string(f.Event.Data)
		}
		out = append(out, s)
	}
	return out
}

func typeName(t tree.EventType) string {
	switch t {
	case tree.EventCreated:
		return "created"
	case tree.EventDeleted:
		return "deleted"
	case tree.EventDataChanged:
		return "data"
	case tree.EventChildrenChanged:
		return "children"
	}
	return "?"
}

// step is one mutation of a table: it applies op to t and returns the
// events it made.
type step func(t *tree.Tree, zxid uint64) []tree.Event

func create(p, data string) step {
	return func(t *tree.Tree, z uint64) []tree.Event {
		_, ev, err := t.Apply(z, 0, tree.Op{Kind: tree.OpCreate, Path: p, Data: []byte(data), Version: -1})
		must(err)
		return ev
	}
}

func set(p, data string) step {
	return func(t *tree.Tree, z uint64) []tree.Event {
		_, ev, err := t.Apply(z, 0, tree.Op{Kind: tree.OpSet, Path: p, Data: []byte(data), Version: -1})
		must(err)
		return ev
	}
}

func del(p string) step {
	return func(t *tree.Tree, z uint64) []tree.Event {
		_, ev, err := t.Apply(z, 0, tree.Op{Kind: tree.OpDelete, Path: p, Version: -1, Recursive: true})
		must(err)
		return ev
	}
}

func multi(ops ...tree.Op) step {
	return func(t *tree.Tree, z uint64) []tree.Event {
		_, ev, err := t.Multi(z, 0, ops)
		must(err)
		return ev
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func TestMatchRules(t *testing.T) {
	tests := []struct {
		name  string
		setup []step // before the watch is set
		watch Spec
		steps []step
		want  []string
	}{
		{"data fires on set", []step{create("/a", "")}, Spec{Data, "/a"},
			[]step{set("/a", "x"), set("/a", "y")}, []string{"w:data:/a"}},
		{"data fires on delete", []step{create("/a", "")}, Spec{Data, "/a"},
			[]step{del("/a")}, []string{"w:deleted:/a"}},
		{"data ignores children", []step{create("/a", "")}, Spec{Data, "/a"},
			[]step{create("/a/b", ""), set("/a/b", "")}, nil},
		{"exists fires on create", nil, Spec{Exists, "/a"},
			[]step{create("/a", "x"), set("/a", "y")}, []string{"w:created:/a"}},
		{"exists fires on set", []step{create("/a", "")}, Spec{Exists, "/a"},
			[]step{set("/a", "x")}, []string{"w:data:/a"}},
		{"exists fires on delete", []step{create("/a", "")}, Spec{Exists, "/a"},
			[]step{del("/a")}, []string{"w:deleted:/a"}},
		{"exists ignores children", []step{create("/a", "")}, Spec{Exists, "/a"},
			[]step{create("/a/b", "")}, nil},
		{"children fires on child create", []step{create("/a", "")}, Spec{Children, "/a"},
			[]step{create("/a/b", ""), create("/a/c", "")}, []string{"w:children:/a"}},
		{"children fires on child delete", []step{create("/a", ""), create("/a/b", "")}, Spec{Children, "/a"},
			[]step{del("/a/b")}, []string{"w:children:/a"}},
		{"children fires on own delete", []step{create("/a", "")}, Spec{Children, "/a"},
			[]step{del("/a")}, []string{"w:deleted:/a"}},
		{"children ignores data and grandchildren", []step{create("/a", ""), create("/a/b", "")}, Spec{Children, "/a"},
			[]step{set("/a", "x"), set("/a/b", "x"), create("/a/b/c", "")}, nil},
		{"one-shot fires once in a multi", []step{create("/a", "")}, Spec{Data, "/a"},
			[]step{multi(tree.Op{Kind: tree.OpSet, Path: "/a", Version: -1}, tree.Op{Kind: tree.OpDelete, Path: "/a", Version: -1})},
			[]string{"w:data:/a"}},
		{"persistent node", nil, Spec{Persistent, "/a"},
			[]step{create("/a", "1"), set("/a", "2"), create("/a/b", "3"), set("/a/b", "4"), del("/a/b"), del("/a"), create("/a", "5")},
			[]string{"w:created:/a=1", "w:data:/a=2", "w:children:/a", "w:children:/a", "w:deleted:/a", "w:created:/a=5"}},
		{"recursive subtree", []step{create("/a", "")}, Spec{Recursive, "/a"},
			[]step{create("/a/b", "1"), create("/a/b/c", "2"), set("/a/b", "3"), create("/ab", ""), set("/a", "4"), del("/a/b")},
			[]string{"w:created:/a/b=1", "w:created:/a/b/c=2", "w:data:/a/b=3", "w:data:/a=4", "w:deleted:/a/b/c", "w:deleted:/a/b"}},
		{"recursive on root", nil, Spec{Recursive, "/"},
			[]step{create("/x", "1"), del("/x")}, []string{"w:created:/x=1", "w:deleted:/x"}},
		{"recursive sees the node itself", nil, Spec{Recursive, "/a"},
			[]step{create("/a", "1"), del("/a")}, []string{"w:created:/a=1", "w:deleted:/a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := tree.New()
			z := uint64(0)
			for _, s := range tt.setup {
				z++
				s(tr, z)
			}
			r := NewRegistry[string]()
			id := r.Add("w", tt.watch)
			// A watch elsewhere must never fire.
			r.Add("other", Spec{tt.watch.Kind, "/elsewhere"})
			var got []Fired[string]
			for _, s := range tt.steps {
				z++
				got = r.Match(s(tr, z), got)
			}
			if g := fired(got); !slices.Equal(g, tt.want) {
				t.Errorf("fired %q, want %q", g, tt.want)
			}
			for _, f := range got {
				if f.ID != id {
					t.Errorf("fired id %d, want %d", f.ID, id)
				}
			}
			_, _, stillThere := r.Get(id)
			if wantGone := tt.watch.Kind.OneShot() && len(tt.want) > 0; stillThere == wantGone {
				t.Errorf("after firing, registered = %v; one-shot %v", stillThere, tt.watch.Kind.OneShot())
			}
			// History replay of a persistent watch equals what it got live.
			if !tt.watch.Kind.OneShot() {
				h := NewHistory(1000, 1<<20, 0)
				tr, z = tree.New(), 0
				for _, s := range append(slices.Clone(tt.setup), tt.steps...) {
					z++
					if err := h.Record(s(tr, z)); err != nil {
						t.Fatal(err)
					}
				}
				replay, err := h.Since(uint64(len(tt.setup)), tt.watch)
				if err != nil {
					t.Fatal(err)
				}
				var asFired []Fired[string]
				for _, ev := range replay {
					asFired = append(asFired, Fired[string]{Owner: "w", Event: ev})
				}
				if g := fired(asFired); !slices.Equal(g, tt.want) {
					t.Errorf("history replay %q, want %q", g, tt.want)
				}
			}
		})
	}
}

func TestRegistryRemove(t *testing.T) {
	r := NewRegistry[string]()
	a := r.Add("c1", Spec{Persistent, "/a"})
	b := r.Add("c1", Spec{Recursive, "/a"})
	c := r.Add("c2", Spec{Persistent, "/a"})
	if r.Remove("c2", a) {
		t.Fatal("removed a watch of another owner")
	}
	if !r.Remove("c1", a) || r.Remove("c1", a) {
		t.Fatal("Remove of an own watch: want true once")
	}
	if r.Count("c1") != 1 || r.Len() != 2 {
		t.Fatalf("count %d len %d", r.Count("c1"), r.Len())
	}
	got := fired(r.Match([]tree.Event{{Type: tree.EventDataChanged, Path: "/a", Zxid: 1}}, nil))
	if want := []string{"c2:data:/a", "c1:data:/a"}; !slices.Equal(got, want) {
		t.Fatalf("fired %q, want %q", got, want)
	}
	if got := r.Owners(); !slices.Equal(got, []string{"c1", "c2"}) {
		t.Fatalf("Owners %q", got)
	}
	if n := r.RemoveOwner("c1"); n != 1 {
		t.Fatalf("RemoveOwner removed %d, want 1", n)
	}
	if _, _, ok := r.Get(b); ok {
		t.Fatal("watch survived RemoveOwner")
	}
	if !r.Remove("c2", c) || r.Len() != 0 || len(r.exact) != 0 || len(r.recursive) != 0 || len(r.owned) != 0 {
		t.Fatalf("registry not empty: %+v", r)
	}
}

// Many one-shot watches on one node all fire, once, and leave nothing
// behind; swap-removal keeps the others findable.
func TestRegistryHerd(t *testing.T) {
	r := NewRegistry[int]()
	for i := range 100 {
		r.Add(i, Spec{Exists, "/lock"})
	}
	for i := 0; i < 100; i += 3 {
		r.RemoveOwner(i)
	}
	got := r.Match([]tree.Event{{Type: tree.EventDeleted, Path: "/lock", Zxid: 9}}, nil)
	if len(got) != 66 || r.Len() != 0 {
		t.Fatalf("fired %d (want 66), left %d", len(got), r.Len())
	}
}

func TestHistory(t *testing.T) {
	ev := func(z uint64, p string) tree.Event { return tree.Event{Type: tree.EventDataChanged, Path: p, Zxid: z} }
	h := NewHistory(4, 1<<20, 10)
	if _, err := h.Since(9, Spec{Recursive, "/"}); !errors.Is(err, ErrTooOld) {
		t.Fatalf("Since below the floor: %v", err)
	}
	must(h.Record([]tree.Event{ev(11, "/a"), ev(11, "/b")}))
	must(h.Record([]tree.Event{ev(12, "/a")}))
	must(h.Record([]tree.Event{ev(14, "/a/x"), ev(14, "/c")}))
	// Five events: zxid 11 goes, whole.
	if h.Floor() != 11 || h.Len() != 3 {
		t.Fatalf("floor %d len %d, want 11 and 3", h.Floor(), h.Len())
	}
	if _, err := h.Since(10, Spec{Recursive, "/"}); !errors.Is(err, ErrTooOld) {
		t.Fatalf("Since 10 after forgetting 11: %v", err)
	}
	got, err := h.Since(11, Spec{Recursive, "/a"})
	if err != nil || len(got) != 2 || got[0].Zxid != 12 || got[1].Path != "/a/x" {
		t.Fatalf("Since 11 /a: %v %v", got, err)
	}
	got, _ = h.Since(12, Spec{Persistent, "/a"})
	if len(got) != 0 {
		t.Fatalf("Since 12 persistent /a: %v", got)
	}
	if err := h.Record([]tree.Event{ev(13, "/a")}); !errors.Is(err, ErrOrder) {
		t.Fatalf("Record going backwards: %v", err)
	}
	// One zxid bigger than the whole bound: the history empties, and its
	// floor says so.
	big := make([]tree.Event, 5)
	for i := range big {
		big[i] = ev(20, fmt.Sprintf("/n%d", i))
	}
	must(h.Record(big))
	if h.Floor() != 20 || h.Len() != 0 || h.Bytes() != 0 {
		t.Fatalf("after an oversized zxid: floor %d len %d bytes %d", h.Floor(), h.Len(), h.Bytes())
	}
	h.Reset(100)
	if h.Floor() != 100 || h.Len() != 0 {
		t.Fatal("Reset")
	}
}

func TestHistoryByteBound(t *testing.T) {
	h := NewHistory(1000, 3*(eventOverhead+2+10), 0)
	for z := uint64(1); z <= 10; z++ {
		must(h.Record([]tree.Event{{Type: tree.EventDataChanged, Path: "/a", Zxid: z, Data: []byte(strings.Repeat("x", 10))}}))
		if h.Bytes() > 3*(eventOverhead+12) {
			t.Fatalf("bytes %d over the bound", h.Bytes())
		}
	}
	if h.Len() != 3 || h.Floor() != 7 {
		t.Fatalf("len %d floor %d, want 3 and 7", h.Len(), h.Floor())
	}
	// Compaction kept the held events intact.
	got, _ := h.Since(7, Spec{Persistent, "/a"})
	if len(got) != 3 || got[0].Zxid != 8 || got[2].Zxid != 10 {
		t.Fatalf("Since 7: %v", got)
	}
}

func TestUnder(t *testing.T) {
	for _, tt := range []struct {
		p, root string
		want    bool
	}{
		{"/a", "/", true}, {"/", "/", true}, {"/a", "/a", true}, {"/a/b", "/a", true},
		{"/ab", "/a", false}, {"/", "/a", false}, {"/b/a", "/a", false},
	} {
		if got := Under(tt.p, tt.root); got != tt.want {
			t.Errorf("Under(%q, %q) = %v", tt.p, tt.root, got)
		}
	}
}

// BenchmarkMatch matches one event against 100,000 watches spread over
// 10,000 nodes (exact, one-shot and recursive): the cost is the watches on
// the event's path and its ancestors, not the total.
func BenchmarkMatch(b *testing.B) {
	r := NewRegistry[int]()
	for i := range 100_000 {
		p := fmt.Sprintf("/app/n%d/k%d", i%100, i%10_000)
		switch i % 4 {
		case 0:
			r.Add(i, Spec{Persistent, p})
		case 1:
			r.Add(i, Spec{Recursive, p})
		case 2:
			r.Add(i, Spec{Children, p})
		default:
			r.Add(i, Spec{Data, p})
		}
	}
	r.Add(-1, Spec{Recursive, "/app"})
	events := []tree.Event{{Type: tree.EventDataChanged, Path: "/app/n7/k1007/leaf", Zxid: 1}}
	var out []Fired[int]
	b.ReportAllocs()
	for b.Loop() {
		out = r.Match(events, out[:0])
	}
	if len(out) != 1 {
		b.Fatalf("fired %d, want 1 (the recursive watch on /app)", len(out))
	}
}
