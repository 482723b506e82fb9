package recipe

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arbor-db/arbor/client"
)

// instanceIDs returns the ids of a set, in order.
func instanceIDs(set []Instance) []string {
	out := make([]string, len(set))
	for i, in := range set {
		out[i] = in.ID
	}
	return out
}

// awaitSet reads Updates until a set with exactly want (sorted) comes.
func awaitSet(t *testing.T, sw *ServiceWatcher, want ...string) []Instance {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case set, ok := <-sw.Updates():
			if !ok {
				t.Fatalf("Updates closed while waiting for %v: %v", want, sw.Err())
			}
			if slices.Equal(instanceIDs(set), want) {
				return set
			}
		case <-timeout:
			t.Fatalf("no set %v within 10s; current %v", want, instanceIDs(sw.Instances()))
		}
	}
}

func TestServiceRegistryRefusesBadInput(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := runMembers(t, 1)
	defer srv.Close()
	c := dialMembers(t, srv)
	defer c.Close(context.Background())
	ctx := deadlineCtx(t)

	if _, err := NewServiceRegistry(nil, "/services"); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("nil client: %v", err)
	}
	for _, root := range []string{"", "services", "/", "/services/"} {
		if _, err := NewServiceRegistry(c, root); !errors.Is(err, client.ErrBadPath) {
			t.Errorf("root %q: %v, want BAD_PATH", root, err)
		}
	}
	r, err := NewServiceRegistry(c, "/services")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "a/b", ".", ".."} {
		if _, err := r.Register(ctx, name, Instance{ID: "i", Address: "x:1"}); !errors.Is(err, client.ErrBadPath) {
			t.Errorf("service %q: %v, want BAD_PATH", name, err)
		}
		if _, err := r.Register(ctx, "api", Instance{ID: name, Address: "x:1"}); !errors.Is(err, client.ErrBadPath) {
			t.Errorf("instance id %q: %v, want BAD_PATH", name, err)
		}
		if _, err := r.Watch(ctx, name); !errors.Is(err, client.ErrBadPath) {
			t.Errorf("Watch %q: %v, want BAD_PATH", name, err)
		}
	}
	if _, err := r.Register(ctx, "api", Instance{ID: "i"}); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("no address: %v, want BAD_REQUEST", err)
	}
}

// Three instances register; a watcher sees all of them; one client closes
// and the watcher's set drops it; pickers never return it after that set.
func TestServiceRegistryWatchFollowsInstances(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := runMembers(t, 3)
	defer srv.Close()
	ctx := deadlineCtx(t)
	var regs []*Registration
	var clients []*client.Client
	for _, id := range []string{"a", "b", "c"} {
		c := dialMembers(t, srv)
		defer c.Close(context.Background())
		clients = append(clients, c)
		r, err := NewServiceRegistry(c, "/services")
		if err != nil {
			t.Fatal(err)
		}
		g, err := r.Register(ctx, "api", Instance{ID: id, Address: id + ".example:80", Metadata: map[string]string{"zone": id}})
		if err != nil {
			t.Fatal(err)
		}
		regs = append(regs, g)
	}
	wc := dialMembers(t, srv)
	defer wc.Close(context.Background())
	r, _ := NewServiceRegistry(wc, "/services")
	sw, err := r.Watch(ctx, "api") // after three registered: its first set
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close(context.Background())
	set := awaitSet(t, sw, "a", "b", "c")
	if set[1].Address != "b.example:80" || set[1].Metadata["zone"] != "b" {
		t.Errorf("instance b read as %+v", set[1])
	}

	// A fourth joins after the watch began: it comes as an event.
	dc := dialMembers(t, srv)
	defer dc.Close(context.Background())
	dr, _ := NewServiceRegistry(dc, "/services")
	d, err := dr.Register(ctx, "api", Instance{ID: "d", Address: "d.example:80"})
	if err != nil {
		t.Fatal(err)
	}
	awaitSet(t, sw, "a", "b", "c", "d")

	// b's client goes away: its session closes, its node goes.
	if err := clients[1].Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-regs[1].Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("b's registration not lost after its client closed")
	}
	awaitSet(t, sw, "a", "c", "d")
	rr, rnd := sw.RoundRobin(), sw.Random()
	seen := map[string]int{}
	for range 30 {
		for _, pick := range []func() (Instance, error){rr.Pick, rnd.Pick} {
			in, err := pick()
			if err != nil {
				t.Fatal(err)
			}
			if in.ID == "b" {
				t.Fatal("picked b after the set without it")
			}
			seen[in.ID]++
		}
	}
	if len(seen) != 3 {
		t.Errorf("picked %v, want each of a, c, d", seen)
	}

	// Deregister: gone from the set too.
	if err := d.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	awaitSet(t, sw, "a", "c")
	if got, err := r.Instances(ctx, "api"); err != nil || !slices.Equal(instanceIDs(got), []string{"a", "c"}) {
		t.Errorf("Instances = %v, %v; want [a c]", instanceIDs(got), err)
	}
	for _, g := range regs {
		if err := g.Deregister(ctx); err != nil {
			t.Errorf("Deregister %s: %v", g.Instance().ID, err)
		}
	}
	awaitSet(t, sw)
	if _, err := rr.Pick(); !errors.Is(err, ErrNoInstance) {
		t.Errorf("Pick from an empty set: %v, want ErrNoInstance", err)
	}

	if err := sw.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-sw.Updates(); ok {
		t.Error("Updates still open after Close")
	}
	if !errors.Is(sw.Err(), client.ErrWatchClosed) {
		t.Errorf("Err after Close = %v", sw.Err())
	}
	if _, err := rr.Pick(); !errors.Is(err, client.ErrWatchClosed) {
		t.Errorf("Pick after Close: %v", err)
	}
}

func TestServiceRegistryRefusesDuplicateID(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := runMembers(t, 1)
	defer srv.Close()
	ctx := deadlineCtx(t)
	a, b := dialMembers(t, srv), dialMembers(t, srv)
	defer a.Close(context.Background())
	defer b.Close(context.Background())
	ra, _ := NewServiceRegistry(a, "/svc")
	rb, _ := NewServiceRegistry(b, "/svc")
	g, err := ra.Register(ctx, "db", Instance{ID: "primary", Address: "a:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Register(ctx, "db", Instance{ID: "primary", Address: "b:1"}); !errors.Is(err, ErrInstanceExists) {
		t.Errorf("second client: %v, want ErrInstanceExists", err)
	}
	if _, err := ra.Register(ctx, "db", Instance{ID: "primary", Address: "a:1"}); !errors.Is(err, ErrInstanceExists) {
		t.Errorf("same client again: %v, want ErrInstanceExists", err)
	}
	if err := g.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := rb.Register(ctx, "db", Instance{ID: "primary", Address: "b:1"})
	if err != nil {
		t.Fatalf("after Deregister: %v", err)
	}
	if err := h.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRegistrationLostWhenNodeDeleted(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := runMembers(t, 1)
	defer srv.Close()
	ctx := deadlineCtx(t)
	a, b := dialMembers(t, srv), dialMembers(t, srv)
	defer a.Close(context.Background())
	defer b.Close(context.Background())
	r, _ := NewServiceRegistry(a, "/svc")
	g, err := r.Register(ctx, "db", Instance{ID: "x", Address: "a:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, g.Node(), client.AnyVersion); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("Lost not closed after the node was deleted")
	}
	if err := g.Deregister(ctx); err != nil {
		t.Errorf("Deregister of a deleted registration: %v", err)
	}
}

// With a tiny event buffer the watch overflows under bursts and is set
// again; the set still ends right.
func TestServiceWatcherSurvivesOverflow(t *testing.T) {
	defer goleak.VerifyNone(t)
	defer func(n int) { serviceWatchBuffer = n }(serviceWatchBuffer)
	serviceWatchBuffer = 1
	srv := runMembers(t, 1)
	defer srv.Close()
	ctx := deadlineCtx(t)
	c := dialMembers(t, srv)
	defer c.Close(context.Background())
	r, _ := NewServiceRegistry(c, "/burst")
	sw, err := r.Watch(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close(context.Background())
	awaitSet(t, sw)
	for _, p := range []string{"/burst", "/burst/api"} {
		if _, _, err := c.Create(ctx, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	var ops []client.Op
	var want []string
	for _, id := range []string{"i0", "i1", "i2", "i3", "i4", "i5"} {
		ops = append(ops, client.OpCreate("/burst/api/"+id, []byte(`{"address":"`+id+`:1"}`), client.Ephemeral()))
		want = append(want, id)
	}
	if _, err := c.Multi(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	awaitSet(t, sw, want...)
	if _, err := c.Multi(ctx, client.OpDelete("/burst/api/i0", client.AnyVersion), client.OpDelete("/burst/api/i3", client.AnyVersion)); err != nil {
		t.Fatal(err)
	}
	awaitSet(t, sw, "i1", "i2", "i4", "i5")
	if sw.Err() != nil {
		t.Errorf("watcher ended: %v", sw.Err())
	}
}

// The watcher ends with the session; pickers then refuse to pick from a
// set nobody keeps up to date.
func TestServiceWatcherEndsWithSession(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := runMembers(t, 1)
	defer srv.Close()
	ctx := deadlineCtx(t)
	c := dialMembers(t, srv)
	r, _ := NewServiceRegistry(c, "/svc")
	g, err := r.Register(ctx, "db", Instance{ID: "x", Address: "a:1"})
	if err != nil {
		t.Fatal(err)
	}
	sw, err := r.Watch(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	awaitSet(t, sw, "x")
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for range sw.Updates() {
	}
	if sw.Err() == nil {
		t.Error("Err is nil after the session closed")
	}
	if _, err := sw.RoundRobin().Pick(); err == nil {
		t.Error("Pick succeeded after the watcher ended")
	}
	if err := sw.Close(ctx); err != nil {
		t.Errorf("Close after the session: %v", err)
	}
	if err := g.Deregister(ctx); err != nil {
		t.Errorf("Deregister after the session: %v", err)
	}
}

// Events of changes the reads already saw are skipped; later ones apply.
func TestServiceStateSkipsWhatItHolds(t *testing.T) {
	st := &serviceState{dir: "/s/api", nodes: map[string]instanceNode{}, floor: 10}
	st.put("a", []byte(`{"address":"a:1"}`), 8)
	st.put("b", []byte(`{"address":"b:1"}`), 12) // recreated after the listing
	for _, tc := range []struct {
		ev      client.WatchEvent
		changed bool
	}{
		{client.WatchEvent{Type: client.EventCreated, Path: "/s/api/a", Zxid: 7, Data: []byte(`{"address":"old:1"}`)}, false},
		{client.WatchEvent{Type: client.EventDeleted, Path: "/s/api/c", Zxid: 9}, false},
		{client.WatchEvent{Type: client.EventDeleted, Path: "/s/api/b", Zxid: 11}, false},
		{client.WatchEvent{Type: client.EventCreated, Path: "/s/api/b", Zxid: 12, Data: []byte(`{"address":"b:1"}`)}, false},
		{client.WatchEvent{Type: client.EventData, Path: "/s/api", Zxid: 13}, false},
		{client.WatchEvent{Type: client.EventData, Path: "/s/api/a", Zxid: 14, Data: []byte(`{"address":"a:2"}`)}, true},
		{client.WatchEvent{Type: client.EventCreated, Path: "/s/api/c", Zxid: 15, Data: []byte(`not json`)}, true},
		{client.WatchEvent{Type: client.EventCreated, Path: "/s/api/c/x", Zxid: 16}, false},
		{client.WatchEvent{Type: client.EventDeleted, Path: "/s/api/b", Zxid: 17}, true},
	} {
		if got := st.apply(tc.ev); got != tc.changed {
			t.Errorf("apply(%v %s @%d) = %v, want %v", tc.ev.Type, tc.ev.Path, tc.ev.Zxid, got, tc.changed)
		}
	}
	set := st.list()
	if !slices.Equal(instanceIDs(set), []string{"a"}) || set[0].Address != "a:2" {
		t.Errorf("set = %+v, want a at a:2 (c's data is not an instance)", set)
	}
}
