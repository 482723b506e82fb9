package servertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/server/servertest"
)

// lockGrants sums arbor_lock_grants_total{op} over the members.
func lockGrants(t *testing.T, cl *servertest.Cluster, op string) int {
	t.Helper()
	re := regexp.MustCompile(`(?m)^arbor_lock_grants_total\{op="` + op + `"\} (\d+)$`)
	total := 0
	for i := range cl.Size() {
		resp, err := http.Get("http://" + cl.Addr(i) + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := re.FindSubmatch(body); m != nil {
			n, _ := strconv.Atoi(string(m[1]))
			total += n
		}
	}
	return total
}

func mustLock(t *testing.T, c *client.Client, path string, opts ...client.LockOption) client.Grant {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g, err := c.Lock(ctx, path, opts...)
	if err != nil {
		t.Fatalf("lock %s: %v", path, err)
	}
	return g
}

// lockAsync starts a Lock and returns the channel its result arrives on.
func lockAsync(c *client.Client, path string, opts ...client.LockOption) <-chan error {
	ch := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := c.Lock(ctx, path, opts...)
		ch <- err
	}()
	return ch
}

func notYet(t *testing.T, ch <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s returned (%v) while it should wait", what, err)
	case <-time.After(200 * time.Millisecond):
	}
}

func within(t *testing.T, ch <-chan error, d time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
		return nil
	}
}

func TestLockHandoverAndInspection(t *testing.T) {
	cl := servertest.NewCluster(t, 3)
	a, b := dialClient(t, cl.Addr(0)), dialClient(t, cl.Addr(1))
	ctx := context.Background()
	ga := mustLock(t, a, "/app/locks/l")
	if ga.Token == 0 || ga.Node != "/app/locks/l/write-0000000000" {
		t.Fatalf("grant %+v", ga)
	}
	// The missing parents are containers: they go with the last holder.
	for _, p := range []string{"/app", "/app/locks", "/app/locks/l"} {
		if st, err := a.Exists(ctx, p); err != nil || st == nil {
			t.Fatalf("%s after lock: %v %v", p, st, err)
		}
	}
	bDone := lockAsync(b, "/app/locks/l")
	// b's request is a node too: holders and waiters are inspectable.
	var kids []string
	for deadline := time.Now().Add(10 * time.Second); len(kids) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("children of the lock: %v", kids)
		}
		kids, _, _ = a.Children(ctx, "/app/locks/l")
	}
	data, st, err := a.Get(ctx, ga.Node)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Session   string `json:"session"`
		Shared    bool   `json:"shared"`
		GrantedMs int64  `json:"granted_ms"`
	}
	if err := json.Unmarshal(data, &d); err != nil || d.Session != a.Session() || d.GrantedMs == 0 || st.EphemeralOwner != a.Session() {
		t.Fatalf("holder's data %s (%v), owner %s; want session %s and a grant time", data, err, st.EphemeralOwner, a.Session())
	}
	waiting, _, _ := a.Get(ctx, "/app/locks/l/"+kids[1])
	d.GrantedMs = 0
	if err := json.Unmarshal(waiting, &d); err != nil || d.Session != b.Session() || d.GrantedMs != 0 {
		t.Fatalf("waiter's data %s: want b's session and no grant time", waiting)
	}
	notYet(t, bDone, "b's lock")
	// The same session asking again goes on with its place.
	if again := mustLock(t, a, "/app/locks/l"); again != (client.Grant{Path: ga.Path, Node: ga.Node, Token: ga.Token, Zxid: again.Zxid}) {
		t.Fatalf("second lock of the holder: %+v, first %+v", again, ga)
	}
	if err := a.Unlock(ctx, "/app/locks/l"); err != nil {
		t.Fatal(err)
	}
	if err := within(t, bDone, 10*time.Second, "b's lock"); err != nil {
		t.Fatal(err)
	}
	if err := a.Unlock(ctx, "/app/locks/l"); !errors.Is(err, client.ErrNotHeld) {
		t.Fatalf("unlock of a lock not held: %v, want NOT_HELD", err)
	}
	gb := mustLock(t, b, "/app/locks/l")
	if gb.Token <= ga.Token {
		t.Fatalf("token %d after %d: tokens must grow", gb.Token, ga.Token)
	}
	data, _, _ = b.Get(ctx, gb.Node)
	d.GrantedMs = 0
	if json.Unmarshal(data, &d) != nil || d.GrantedMs == 0 {
		t.Fatalf("granted waiter's data %s: no grant time", data)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The last holder gone, the containers go too (the reaper).
	waitGoneClient(t, a, "/app", 20*time.Second)
}

func waitGoneClient(t *testing.T, c *client.Client, path string, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); ; {
		st, err := c.Exists(context.Background(), path)
		if err == nil && st == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there after %v (%v)", path, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// 16 contenders on one lock: never two holders, tokens strictly increase in
// grant order, and each release wakes exactly one waiter.
func TestLockSixteenContenders(t *testing.T) {
	cl := servertest.NewCluster(t, 3)
	const contenders, rounds = 16, 5
	clients := make([]*client.Client, contenders)
	for i := range clients {
		clients[i] = dialClient(t, cl.Addr(i%3))
	}
	var (
		holders  atomic.Int32
		mu       sync.Mutex
		tokens   []uint64
		overlaps atomic.Int32
	)
	var wg sync.WaitGroup
	errs := make(chan error, contenders)
	for _, c := range clients {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for range rounds {
				g, err := c.Lock(ctx, "/contended")
				if err != nil {
					errs <- err
					return
				}
				if holders.Add(1) != 1 {
					overlaps.Add(1)
				}
				mu.Lock()
				tokens = append(tokens, g.Token)
				mu.Unlock()
				holders.Add(-1)
				if err := c.Unlock(ctx, "/contended"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := overlaps.Load(); n != 0 {
		t.Fatalf("%d grants while another client held the lock", n)
	}
	if len(tokens) != contenders*rounds {
		t.Fatalf("%d grants, want %d", len(tokens), contenders*rounds)
	}
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Fatalf("grant %d has token %d after %d: tokens must strictly increase", i, tokens[i], tokens[i-1])
		}
	}
	// Every answer the members sent was a grant a client took: no waiter
	// was woken for nothing.
	if n := lockGrants(t, cl, "lock"); n != contenders*rounds {
		t.Fatalf("members report %d lock grants for %d taken", n, contenders*rounds)
	}
}

// One release wakes exactly one of many waiters.
func TestLockReleaseWakesOne(t *testing.T) {
	cl := servertest.NewCluster(t, 3)
	holder := dialClient(t, cl.Addr(0))
	mustLock(t, holder, "/one")
	const waiters = 8
	done := make(chan error, waiters)
	var cs []*client.Client
	for i := range waiters {
		c := dialClient(t, cl.Addr(i%3))
		cs = append(cs, c)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := c.Lock(ctx, "/one")
			done <- err
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		kids, _, _ := holder.Children(context.Background(), "/one")
		if len(kids) == waiters+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d children, want %d", len(kids), waiters+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := lockGrants(t, cl, "lock")
	if err := holder.Unlock(context.Background(), "/one"); err != nil {
		t.Fatal(err)
	}
	if err := within(t, done, 10*time.Second, "a waiter"); err != nil {
		t.Fatal(err)
	}
	notYet(t, done, "a second waiter")
	if n := lockGrants(t, cl, "lock") - before; n != 1 {
		t.Fatalf("one release answered %d waiters", n)
	}
	_ = cs
}

func TestLockSharedAndTimeouts(t *testing.T) {
	cl := servertest.NewCluster(t, 1)
	ctx := context.Background()
	r1, r2, w, r3 := dialClient(t, cl.Addr(0)), dialClient(t, cl.Addr(0)), dialClient(t, cl.Addr(0)), dialClient(t, cl.Addr(0))
	mustLock(t, r1, "/rw", client.Shared())
	mustLock(t, r2, "/rw", client.Shared())
	// A writer waits for the readers; a reader after a waiting writer
	// waits for it (writers are not starved).
	wDone := lockAsync(w, "/rw")
	notYet(t, wDone, "the writer")
	r3Done := lockAsync(r3, "/rw", client.Shared())
	notYet(t, r3Done, "the reader behind the writer")
	// Trying once while held: TIMEOUT at once, nothing left queued.
	try := dialClient(t, cl.Addr(0))
	if _, err := try.Lock(ctx, "/rw", client.WaitAtMost(0)); !errors.Is(err, client.ErrTimeout) {
		t.Fatalf("try of a held lock: %v, want TIMEOUT", err)
	}
	kids, _, _ := try.Children(ctx, "/rw")
	if len(kids) != 4 {
		t.Fatalf("children after a failed try: %v", kids)
	}
	// A bounded wait runs out and withdraws its node.
	start := time.Now()
	if _, err := try.Lock(ctx, "/rw", client.WaitAtMost(300*time.Millisecond)); !errors.Is(err, client.ErrTimeout) {
		t.Fatalf("bounded wait: %v, want TIMEOUT", err)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("wait_ms 300 answered TIMEOUT after %v", el)
	}
	if kids, _, _ := try.Children(ctx, "/rw"); len(kids) != 4 {
		t.Fatalf("children after a timed-out wait: %v", kids)
	}
	if err := r1.Unlock(ctx, "/rw"); err != nil {
		t.Fatal(err)
	}
	notYet(t, wDone, "the writer with one reader left")
	if err := r2.Unlock(ctx, "/rw"); err != nil {
		t.Fatal(err)
	}
	if err := within(t, wDone, 10*time.Second, "the writer"); err != nil {
		t.Fatal(err)
	}
	notYet(t, r3Done, "the reader behind the holding writer")
	// Closing the writer's session releases it.
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := within(t, r3Done, 10*time.Second, "the reader"); err != nil {
		t.Fatal(err)
	}
	// Bad input.
	for _, req := range []wire.Request{
		{Op: wire.OpLock, Path: "/arbor/x"},
		{Op: wire.OpLock, Path: "no-slash"},
		{Op: wire.OpLock, Path: "/x", WaitMs: ptr(int64(-2))},
		{Op: wire.OpLock, Path: "/x", Value: []byte("v")},
		{Op: wire.OpElect, Path: "/x", WaitMs: ptr(int64(5))},
		{Op: wire.OpElect, Path: "/x", Shared: true},
	} {
		if _, err := try.Do(ctx, &req); err == nil {
			t.Errorf("%+v accepted", req)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestElection(t *testing.T) {
	cl := servertest.NewCluster(t, 3)
	ctx := context.Background()
	a, b := dialClient(t, cl.Addr(0)), dialClient(t, cl.Addr(1))
	watcher := dialClient(t, cl.Addr(2))
	if l, err := watcher.Leader(ctx, "/svc/leader"); err != nil || l != nil {
		t.Fatalf("leader of an empty election: %+v %v", l, err)
	}
	ga, err := a.Elect(ctx, "/svc/leader", []byte("a:8080"))
	if err != nil {
		t.Fatal(err)
	}
	var ev <-chan client.WatchEvent
	l, err := watcher.Leader(ctx, "/svc/leader", client.WatchOnce(&ev))
	if err != nil || l == nil || string(l.Value) != "a:8080" || l.Session != a.Session() || l.Token != ga.Token {
		t.Fatalf("leader: %+v %v; want a's", l, err)
	}
	bDone := make(chan error, 1)
	go func() {
		_, err := b.Elect(ctx, "/svc/leader", []byte("b:8080"))
		bDone <- err
	}()
	notYet(t, bDone, "b's candidacy")
	select {
	case e := <-ev:
		t.Fatalf("leader watch fired (%+v) on a new candidate: only leader changes should", e)
	default:
	}
	if err := a.Resign(ctx, "/svc/leader"); err != nil {
		t.Fatal(err)
	}
	if err := within(t, bDone, 10*time.Second, "b's candidacy"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ev:
	case <-time.After(10 * time.Second):
		t.Fatal("the leader watch did not fire when the leader resigned")
	}
	l, err = watcher.Leader(ctx, "/svc/leader")
	if err != nil || l == nil || string(l.Value) != "b:8080" || l.Token <= ga.Token {
		t.Fatalf("leader after a resigned: %+v %v", l, err)
	}
	if err := a.Resign(ctx, "/svc/leader"); !errors.Is(err, client.ErrNotHeld) {
		t.Fatalf("resign of no candidacy: %v", err)
	}
	// The raw answer with no leader carries explicit nulls.
	if err := b.Resign(ctx, "/svc/leader"); err != nil {
		t.Fatal(err)
	}
	raw := connect(t, cl.Addr(0))
	raw.id++
	if err := raw.ws.WriteJSON(wire.Request{ID: raw.id, Op: wire.OpLeader, Path: "/svc/leader"}); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := raw.ws.ReadJSON(&m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"value", "session", "token"} {
		if v, ok := m[k]; !ok || v != nil {
			t.Fatalf("leader with no leader: %s = %v (present %v), want null", k, v, ok)
		}
	}
}

// A lock answered out of order: later requests on the connection are
// answered while it waits.
func TestLockAnswersOutOfOrder(t *testing.T) {
	cl := servertest.NewCluster(t, 1)
	holder := dialClient(t, cl.Addr(0))
	mustLock(t, holder, "/ooo")
	raw := connect(t, cl.Addr(0))
	send := func(req wire.Request) uint64 {
		raw.id++
		req.ID = raw.id
		if err := raw.ws.WriteJSON(req); err != nil {
			t.Fatal(err)
		}
		return req.ID
	}
	recv := func() wire.Response {
		_ = raw.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var r wire.Response
		if err := raw.ws.ReadJSON(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	lockID := send(wire.Request{Op: wire.OpLock, Path: "/ooo"})
	getID := send(wire.Request{Op: wire.OpExists, Path: "/ooo"})
	if r := recv(); r.ID != getID || !r.OK {
		t.Fatalf("first answer %+v, want the exists (id %d) while the lock waits", r, getID)
	}
	if err := holder.Unlock(context.Background(), "/ooo"); err != nil {
		t.Fatal(err)
	}
	r := recv()
	if r.ID != lockID || !r.OK || r.Token == nil || r.Node == "" {
		t.Fatalf("lock answer %+v", r)
	}
}

// Two lock requests of one connection for one path wait on the same child
// and are both answered at its grant.
func TestLockAskedTwiceWhileWaiting(t *testing.T) {
	cl := servertest.NewCluster(t, 1)
	holder := dialClient(t, cl.Addr(0))
	mustLock(t, holder, "/twice")
	raw := connect(t, cl.Addr(0))
	for range 2 {
		raw.id++
		if err := raw.ws.WriteJSON(wire.Request{ID: raw.id, Op: wire.OpLock, Path: "/twice"}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // both queued on the member
	if err := holder.Unlock(context.Background(), "/twice"); err != nil {
		t.Fatal(err)
	}
	var tokens []uint64
	for range 2 {
		_ = raw.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var r wire.Response
		if err := raw.ws.ReadJSON(&r); err != nil {
			t.Fatalf("waiting for both answers: %v (got %d)", err, len(tokens))
		}
		if !r.OK || r.Token == nil {
			t.Fatalf("answer %+v", r)
		}
		tokens = append(tokens, *r.Token)
	}
	if tokens[0] != tokens[1] {
		t.Fatalf("tokens %v: the same child should hold for both", tokens)
	}
}
