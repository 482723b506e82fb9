package recipe

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arbor-db/arbor/arbortest"
	"github.com/arbor-db/arbor/client"
)

// runMembers runs members in process. The caller defers Close after its
// goleak.VerifyNone, so that the members stop before the check (t.Cleanup
// would run after it).
func runMembers(t *testing.T, members int) *arbortest.Server {
	t.Helper()
	srv, err := arbortest.New(members)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// dialMembers opens a session on srv; the caller defers its Close.
func dialMembers(t *testing.T, srv *arbortest.Server) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// awaitChildren waits, with a watch, until path has n children.
func awaitChildren(t *testing.T, c *client.Client, path string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		var ch <-chan client.WatchEvent
		kids, _, err := c.Children(ctx, path, client.WatchOnce(&ch))
		if err != nil {
			t.Fatalf("waiting for %d children of %s: %v", n, path, err)
		}
		if len(kids) == n {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("%s has %d children, want %d", path, len(kids), n)
		}
	}
}

// countChildren counts path's children (0 when path is gone).
func countChildren(t *testing.T, c *client.Client, path string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kids, _, err := c.Children(ctx, path)
	if errors.Is(err, client.ErrNoNode) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(kids)
}

func deadlineCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestParsePermitName(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
		seq  uint64
		ok   bool
	}{
		{"ABC-permit-0000000007", "ABC", 7, true},
		{"ABC-permit-12345678901", "ABC", 12345678901, true},
		{"-permit-0000000001", "", 0, false},
		{"ABC-permit-", "", 0, false},
		{"ABC-permit-x1", "", 0, false},
		{"lock-0000000001", "", 0, false},
	} {
		id, seq, ok := parsePermitName(tc.name)
		if id != tc.id || seq != tc.seq || ok != tc.ok {
			t.Errorf("parsePermitName(%q) = %q, %d, %v; want %q, %d, %v", tc.name, id, seq, ok, tc.id, tc.seq, tc.ok)
		}
	}
}

func TestNewSemaphoreRefusesBadInput(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := runMembers(t, 1)
	defer srv.Close()
	c := dialMembers(t, srv)
	defer c.Close(context.Background())

	if _, err := NewSemaphore(nil, "/s", 1); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("nil client: %v", err)
	}
	for _, p := range []string{"", "s", "/", "/s/", "/a//b"} {
		if _, err := NewSemaphore(c, p, 1); !errors.Is(err, client.ErrBadPath) {
			t.Errorf("path %q: %v, want BAD_PATH", p, err)
		}
	}
	for _, n := range []int{0, -1} {
		if _, err := NewSemaphore(c, "/s", n); !errors.Is(err, client.ErrBadRequest) {
			t.Errorf("%d permits: %v, want BAD_REQUEST", n, err)
		}
	}
	// What only the cluster checks comes back from Acquire.
	s, err := NewSemaphore(c, "/arbor/s", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(deadlineCtx(t)); err == nil {
		t.Error("Acquire on a reserved path succeeded")
	}
}

// Eight clients share three permits: never more than three hold one at
// once, every token is new, and a permit asked for after another was
// released has a larger token (what a fenced resource relies on).
func TestSemaphoreAdmitsAtMostN(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := runMembers(t, 3)
	defer srv.Close()
	ctx := deadlineCtx(t)

	const clients, permits, rounds = 8, 3, 4
	var holders, maxHolders atomic.Int32
	var maxReleased atomic.Uint64
	var mu sync.Mutex
	tokens := map[uint64]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		c := dialMembers(t, srv)
		defer c.Close(context.Background())
		s, err := NewSemaphore(c, "/jobs/sem", permits)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range rounds {
				released := maxReleased.Load()
				p, err := s.Acquire(ctx)
				if err != nil {
					errs <- err
					return
				}
				n := holders.Add(1)
				for m := maxHolders.Load(); n > m && !maxHolders.CompareAndSwap(m, n); m = maxHolders.Load() {
				}
				mu.Lock()
				dup := tokens[p.Token()]
				tokens[p.Token()] = true
				mu.Unlock()
				if dup {
					t.Errorf("token %d granted twice", p.Token())
				}
				if p.Token() <= released {
					t.Errorf("token %d is not above %d, released before it was asked for", p.Token(), released)
				}
				// Hold it for a round trip, so that others queue.
				if err := c.Sync(ctx, "/"); err != nil {
					errs <- err
					return
				}
				holders.Add(-1)
				tok := p.Token()
				if err := p.Release(ctx); err != nil {
					errs <- err
					return
				}
				for m := maxReleased.Load(); tok > m && !maxReleased.CompareAndSwap(m, tok); m = maxReleased.Load() {
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if m := maxHolders.Load(); m > permits {
		t.Errorf("%d holders at once, want at most %d", m, permits)
	}
	if len(tokens) != clients*rounds && !t.Failed() {
		t.Errorf("%d grants, want %d", len(tokens), clients*rounds)
	}
}

func TestSemaphoreTokensGrow(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := runMembers(t, 1)
	defer srv.Close()
	c := dialMembers(t, srv)
	defer c.Close(context.Background())
	ctx := deadlineCtx(t)
	s, err := NewSemaphore(c, "/grow", 2)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for range 5 {
		p, err := s.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p.Token() <= last {
			t.Errorf("token %d after %d", p.Token(), last)
		}
		last = p.Token()
		if err := p.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p.Release(ctx); err != nil {
			t.Errorf("second Release: %v", err)
		}
	}
}

// acquireAsync runs Acquire on its own goroutine; the result arrives on the
// channel.
func acquireAsync(ctx context.Context, s *Semaphore) <-chan acquireResult {
	ch := make(chan acquireResult, 1)
	go func() {
		p, err := s.Acquire(ctx)
		ch <- acquireResult{p, err}
	}()
	return ch
}

type acquireResult struct {
	p   *Permit
	err error
}

func mustGrant(t *testing.T, ch <-chan acquireResult) *Permit {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatal(a.err)
		}
		return a.p
	case <-time.After(10 * time.Second):
		t.Fatal("no permit granted within 10s")
	}
	return nil
}

func notGrantedYet(t *testing.T, ch <-chan acquireResult) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("granted too early: %v, %v", a.p, a.err)
	default:
	}
}

// Holders release in any order: the first waiter is admitted by whichever
// goes, and the waiters behind it follow one by one.
func TestSemaphoreReleaseInAnyOrder(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := runMembers(t, 1)
	defer srv.Close()
	ctx := deadlineCtx(t)
	sems := make([]*Semaphore, 5)
	for i := range sems {
		c := dialMembers(t, srv)
		defer c.Close(context.Background())
		var err error
		if sems[i], err = NewSemaphore(c, "/order", 2); err != nil {
			t.Fatal(err)
		}
	}
	watcher := dialMembers(t, srv)
	defer watcher.Close(context.Background())

	a, err := sems[0].Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sems[1].Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var waiting []<-chan acquireResult
	for i, s := range sems[2:] {
		waiting = append(waiting, acquireAsync(ctx, s))
		// One at a time, so that they queue in this order.
		awaitChildren(t, watcher, "/order", 3+i)
	}
	notGrantedYet(t, waiting[0])

	// The second holder goes first: the first waiter gets its permit.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	c := mustGrant(t, waiting[0])
	notGrantedYet(t, waiting[1])
	// The first waiter is now a holder; the one behind it moves up and is
	// admitted when any holder goes.
	if err := c.Release(ctx); err != nil {
		t.Fatal(err)
	}
	d := mustGrant(t, waiting[1])
	notGrantedYet(t, waiting[2])
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	e := mustGrant(t, waiting[2])
	for _, p := range []*Permit{d, e} {
		if err := p.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := countChildren(t, watcher, "/order"); n != 0 {
		t.Errorf("%d nodes left", n)
	}
}

// A holder whose client closes frees its permit for the next waiter, and
// its Lost channel closes.
func TestSemaphoreClosedHolderFreesPermit(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := runMembers(t, 3)
	defer srv.Close()
	ctx := deadlineCtx(t)
	holder, waiter := dialMembers(t, srv), dialMembers(t, srv)
	defer waiter.Close(context.Background())
	hs, err := NewSemaphore(holder, "/closed", 1)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := NewSemaphore(waiter, "/closed", 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := hs.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := acquireAsync(ctx, ws)
	awaitChildren(t, waiter, "/closed", 2)
	notGrantedYet(t, got)

	if err := holder.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("Lost not closed after the holder's client closed")
	}
	if err := p.Release(ctx); err != nil {
		t.Errorf("Release after Close: %v", err)
	}
	q := mustGrant(t, got)
	if q.Token() <= p.Token() {
		t.Errorf("token %d after %d", q.Token(), p.Token())
	}
	select {
	case <-q.Lost():
		t.Error("the new permit is lost")
	default:
	}
	if err := q.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-q.Lost():
	default:
		t.Error("Lost not closed after Release")
	}
}

func TestSemaphoreLostWhenNodeDeleted(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := runMembers(t, 1)
	defer srv.Close()
	ctx := deadlineCtx(t)
	c, other := dialMembers(t, srv), dialMembers(t, srv)
	defer c.Close(context.Background())
	defer other.Close(context.Background())
	s, err := NewSemaphore(c, "/deleted", 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Delete(ctx, p.Node(), client.AnyVersion); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("Lost not closed after the node was deleted")
	}
	if err := p.Release(ctx); err != nil {
		t.Errorf("Release of a deleted permit: %v", err)
	}
}

func TestSemaphoreTryAcquire(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := runMembers(t, 1)
	defer srv.Close()
	ctx := deadlineCtx(t)
	a, b := dialMembers(t, srv), dialMembers(t, srv)
	defer a.Close(context.Background())
	defer b.Close(context.Background())
	as, _ := NewSemaphore(a, "/try", 1)
	bs, _ := NewSemaphore(b, "/try", 1)

	p, err := as.TryAcquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bs.TryAcquire(ctx); !errors.Is(err, ErrNoPermit) {
		t.Fatalf("TryAcquire while held: %v, want ErrNoPermit", err)
	}
	if n := countChildren(t, b, "/try"); n != 1 {
		t.Errorf("%d nodes after a refused TryAcquire, want 1 (withdrawn)", n)
	}
	if err := p.Release(ctx); err != nil {
		t.Fatal(err)
	}
	q, err := bs.TryAcquire(ctx)
	if err != nil {
		t.Fatalf("TryAcquire when free: %v", err)
	}
	if err := q.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSemaphoreAcquireCanceledWithdraws(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := runMembers(t, 1)
	defer srv.Close()
	ctx := deadlineCtx(t)
	a, b := dialMembers(t, srv), dialMembers(t, srv)
	defer a.Close(context.Background())
	defer b.Close(context.Background())
	as, _ := NewSemaphore(a, "/cancel", 1)
	bs, _ := NewSemaphore(b, "/cancel", 1)
	p, err := as.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}

	wctx, cancel := context.WithCancel(ctx)
	got := acquireAsync(wctx, bs)
	awaitChildren(t, a, "/cancel", 2)
	cancel()
	select {
	case r := <-got:
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("canceled Acquire: %v, %v; want context.Canceled", r.p, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Acquire did not return after cancel")
	}
	if n := countChildren(t, a, "/cancel"); n != 1 {
		t.Errorf("%d nodes after a canceled Acquire, want 1 (withdrawn)", n)
	}

	dctx, dcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer dcancel()
	if _, err := bs.Acquire(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Acquire past its deadline: %v, want context.DeadlineExceeded", err)
	}
	if err := p.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSemaphorePermitsMismatch(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := runMembers(t, 1)
	defer srv.Close()
	ctx := deadlineCtx(t)
	a, b := dialMembers(t, srv), dialMembers(t, srv)
	defer a.Close(context.Background())
	defer b.Close(context.Background())
	two, _ := NewSemaphore(a, "/mismatch", 2)
	three, _ := NewSemaphore(b, "/mismatch", 3)
	p, err := two.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := three.Acquire(ctx); !errors.Is(err, ErrPermitsMismatch) {
		t.Fatalf("Acquire with 3 permits on a 2-permit semaphore: %v", err)
	}
	if n := countChildren(t, a, "/mismatch"); n != 1 {
		t.Errorf("%d nodes after a refused Acquire, want 1", n)
	}
	if err := p.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// A plain node with no data is claimed by the first Acquire.
	if _, _, err := a.Create(ctx, "/plain", nil); err != nil {
		t.Fatal(err)
	}
	s, _ := NewSemaphore(a, "/plain", 4)
	q, err := s.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if data, _, err := a.Get(ctx, "/plain"); err != nil || string(data) != "4" {
		t.Errorf("/plain holds %q, %v; want 4", data, err)
	}
	if err := q.Release(ctx); err != nil {
		t.Fatal(err)
	}
}
