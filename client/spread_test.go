package client

import (
	"slices"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

func TestDialOrder(t *testing.T) {
	eps := []string{"c:1", "a:1", "b:1", "d:1"}
	live := map[string]bool{"a:1": true, "b:1": true, "c:1": true}
	cases := []struct {
		name    string
		live    map[string]bool
		turn    uint64
		inOrder bool
		want    []string
	}{
		{"in order", live, 5, true, []string{"c:1", "a:1", "b:1", "d:1"}},
		{"live first, turn 0", live, 0, false, []string{"a:1", "b:1", "c:1", "d:1"}},
		{"live first, turn 1", live, 1, false, []string{"b:1", "c:1", "a:1", "d:1"}},
		{"live first, turn 5", live, 5, false, []string{"c:1", "a:1", "b:1", "d:1"}},
		{"none known live", nil, 2, false, []string{"c:1", "d:1", "a:1", "b:1"}},
	}
	for _, tc := range cases {
		var got []string
		for _, i := range dialOrder(eps, tc.live, tc.turn, tc.inOrder) {
			got = append(got, eps[i])
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Consecutive turns start at each live member equally often.
func TestDialOrderSpreads(t *testing.T) {
	eps := []string{"a:1", "b:1", "c:1"}
	live := map[string]bool{"a:1": true, "b:1": true, "c:1": true}
	count := map[string]int{}
	for turn := range uint64(300) {
		count[eps[dialOrder(eps, live, turn+7, false)[0]]]++
	}
	for _, ep := range eps {
		if count[ep] != 100 {
			t.Fatalf("first choices %v, want 100 each", count)
		}
	}
}

func TestFailoverOrder(t *testing.T) {
	eps := []string{"a:1", "b:1", "c:1", "d:1"}
	if got := failoverOrder(eps, nil, 2, true); !slices.Equal(got, []int{3, 0, 1, 2}) {
		t.Fatalf("in order after 2: %v", got)
	}
	live := map[string]bool{"a:1": true, "b:1": true, "c:1": true}
	firsts := map[int]int{}
	for range 200 {
		got := failoverOrder(eps, live, 1, false)
		if len(got) != 4 || got[3] != 1 || got[2] != 3 || !slices.Contains(got[:2], 0) || !slices.Contains(got[:2], 2) {
			t.Fatalf("after losing 1: %v; want 0 and 2 (live) in some order, then 3, then 1", got)
		}
		firsts[got[0]]++
	}
	if firsts[0] == 0 || firsts[2] == 0 {
		t.Fatalf("first choices %v: want both live members", firsts)
	}
}

// Clients dialling the same endpoints, in any order, share one view; a
// custom dialer or InOrder shares none.
func TestViewFor(t *testing.T) {
	a := viewFor(Config{Endpoints: []string{"x:1", "y:1"}})
	if b := viewFor(Config{Endpoints: []string{"y:1", "x:1"}}); a == nil || a != b {
		t.Fatalf("views %p and %p, want one", a, b)
	}
	if v := viewFor(Config{Endpoints: []string{"x:1"}}); v == a {
		t.Fatal("other endpoints share the view")
	}
	if v := viewFor(Config{Endpoints: []string{"x:1", "y:1"}, InOrder: true}); v != nil {
		t.Fatal("InOrder has a view")
	}
	a.update([]wire.Member{{Name: "m1", ClientURL: "x:1", Alive: true}}, 7)
	if ms, hash, ok := a.snapshot(); !ok || hash != 7 || len(ms) != 1 {
		t.Fatalf("snapshot %v %d %v", ms, hash, ok)
	}
	a.mu.Lock()
	a.seen = time.Now().Add(-viewFresh)
	a.mu.Unlock()
	if _, _, ok := a.snapshot(); ok {
		t.Fatal("a view older than viewFresh is used")
	}
	a.confirm(7)
	if !a.fresh() {
		t.Fatal("a ping with the view's hash did not confirm it")
	}
	a.confirm(8)
	a.forget()
	if a.fresh() {
		t.Fatal("a forgotten view is used")
	}
}

// A view whose address now answers as another member is dropped, the
// session there closed, and Dial starts over from Endpoints.
func TestDialStaleView(t *testing.T) {
	boot := newFakeServer(t)
	other := newFakeServer(t, func(f *fakeServer) { f.name = "impostor" })
	cfg := Config{Endpoints: []string{boot.addr()}, Logger: quiet}
	v := viewFor(cfg)
	v.update([]wire.Member{{Name: "m9", ClientURL: other.addr(), Alive: true}}, 1)
	c, err := Dial(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx(t))
	if c.Server() != "fake" {
		t.Fatalf("on %s, want the bootstrap endpoint", c.Server())
	}
	if slices.Contains(c.Endpoints(), other.addr()) {
		t.Fatalf("endpoints %v still hold the stale member", c.Endpoints())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		other.mu.Lock()
		closed := len(other.sessions) == 1 && other.sessions[wire.FormatSession(1)].ended
		other.mu.Unlock()
		if closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the session opened on the stale member was not closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
