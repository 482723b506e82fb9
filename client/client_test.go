package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arbor-db/arbor/client/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func dial(t *testing.T, f *fakeServer, mod ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{Endpoints: []string{f.addr()}, Logger: quiet}
	for _, m := range mod {
		m(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestCRUD(t *testing.T) {
	f := newFakeServer(t)
	c := dial(t, f)
	if len(c.Session()) != 16 || c.Server() != "fake" {
		t.Fatalf("session %q server %q", c.Session(), c.Server())
	}
	p, st, err := c.Create(ctx(t), "/a", []byte("one"))
	if err != nil || p != "/a" || st.DataLength != 3 {
		t.Fatalf("Create = %q %+v %v", p, st, err)
	}
	if c.LastZxid() != st.Czxid {
		t.Fatalf("LastZxid %d, want czxid %d", c.LastZxid(), st.Czxid)
	}
	if _, _, err := c.Create(ctx(t), "/a", nil); !errors.Is(err, ErrNodeExists) {
		t.Fatalf("second Create: %v, want NODE_EXISTS", err)
	}
	seq, _, err := c.Create(ctx(t), "/a/job-", nil, Sequential(), Ephemeral())
	if err != nil || seq != "/a/job-0000000000" {
		t.Fatalf("sequential Create = %q %v", seq, err)
	}
	data, st, err := c.Get(ctx(t), "/a", Local())
	if err != nil || string(data) != "one" || st.NumChildren != 1 {
		t.Fatalf("Get = %q %+v %v", data, st, err)
	}
	st, err = c.Set(ctx(t), "/a", []byte("two"), 0)
	if err != nil || st.Version != 1 {
		t.Fatalf("Set = %+v %v", st, err)
	}
	if _, err := c.Set(ctx(t), "/a", nil, 0); !errors.Is(err, ErrBadVersion) {
		t.Fatalf("Set at stale version: %v, want BAD_VERSION", err)
	}
	kids, _, err := c.Children(ctx(t), "/a")
	if err != nil || !slices.Equal(kids, []string{"job-0000000000"}) {
		t.Fatalf("Children = %q %v", kids, err)
	}
	if err := c.Delete(ctx(t), "/a", AnyVersion); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Delete non-empty: %v, want NOT_EMPTY", err)
	}
	if err := c.Delete(ctx(t), "/a", AnyVersion, Recursive()); err != nil {
		t.Fatalf("Delete recursive: %v", err)
	}
	st, err = c.Exists(ctx(t), "/a")
	if err != nil || st != nil {
		t.Fatalf("Exists after delete = %+v %v, want nil stat, nil error", st, err)
	}
	_, _, err = c.Get(ctx(t), "/a")
	var e *Error
	if !errors.Is(err, ErrNoNode) || !errors.As(err, &e) || e.Message != "/a does not exist" || e.Index != -1 {
		t.Fatalf("Get missing: %#v", err)
	}
	if err := c.Sync(ctx(t), "/"); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	ms, err := c.Members(ctx(t))
	if err != nil || len(ms) != 1 || ms[0].Role != wire.RoleLeader {
		t.Fatalf("Members = %+v %v", ms, err)
	}
}

func TestMulti(t *testing.T) {
	f := newFakeServer(t)
	c := dial(t, f)
	res, err := c.Multi(ctx(t), OpCreate("/m", []byte("x")), OpCheck("/m", 0), OpSet("/m", []byte("y"), 0))
	if err != nil || len(res) != 3 || res[0].Path != "/m" || res[2].Stat.Version != 1 {
		t.Fatalf("Multi = %+v %v", res, err)
	}
	_, err = c.Multi(ctx(t), OpCreate("/n", nil), OpCheck("/m", 7), OpDelete("/m", AnyVersion))
	var e *Error
	if !errors.Is(err, ErrBadVersion) || !errors.As(err, &e) || e.Index != 1 {
		t.Fatalf("failing Multi: %v, want BAD_VERSION at index 1", err)
	}
	if st, _ := c.Exists(ctx(t), "/n"); st != nil {
		t.Fatal("a failed multi applied its first sub-op")
	}
}

func TestErrorCodesMapToSentinels(t *testing.T) {
	f := newFakeServer(t)
	sentinels := []*Error{ErrBadRequest, ErrUnknownOp, ErrBadPath, ErrNoNode, ErrNodeExists,
		ErrNotEmpty, ErrBadVersion, ErrNoChildrenForEphemerals, ErrTooLarge, ErrReadOnly,
		ErrNoSession, ErrSessionExpired, ErrAuthFailed, ErrNoAuth, ErrNotHeld, ErrTimeout,
		ErrUnavailable, ErrInternal}
	for _, s := range sentinels {
		t.Run(string(s.Code), func(t *testing.T) {
			c := dial(t, f) // SESSION_EXPIRED ends a session for good
			path := "/fail/" + string(s.Code)
			_, _, err := c.Get(ctx(t), path)
			if !errors.Is(err, s) {
				t.Fatalf("Get: %v, want errors.Is %s", err, s.Code)
			}
			if IsIndeterminate(err) {
				t.Fatalf("a failed read is never indeterminate: %v", err)
			}
			_, err = c.Set(ctx(t), path, nil, AnyVersion)
			want := s.Code == wire.CodeTimeout || s.Code == wire.CodeUnavailable
			if !errors.Is(err, s) || IsIndeterminate(err) != want {
				t.Fatalf("Set: %v indeterminate=%v, want %s indeterminate=%v", err, IsIndeterminate(err), s.Code, want)
			}
			for _, other := range sentinels {
				if other != s && errors.Is(err, other) {
					t.Fatalf("%v also matches %s", err, other.Code)
				}
			}
		})
	}
}

// TestMatchByID has the server answer every two requests in reverse order:
// each caller must still get its own answer.
func TestMatchByID(t *testing.T) {
	f := newFakeServer(t)
	c := dial(t, f)
	const n = 50
	for i := range n {
		if _, _, err := c.Create(ctx(t), fmt.Sprintf("/k%d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	f.setSwapPairs(true)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			data, _, err := c.Get(ctx(t), fmt.Sprintf("/k%d", i))
			if err == nil && string(data) != fmt.Sprint(i) {
				err = fmt.Errorf("get /k%d answered %q", i, data)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestPipelining runs 50 goroutines doing writes and reads on one Client.
func TestPipelining(t *testing.T) {
	f := newFakeServer(t)
	c := dial(t, f)
	const workers, rounds = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			p := fmt.Sprintf("/w%d", w)
			if _, _, err := c.Create(ctx(t), p, nil); err != nil {
				errs <- err
				return
			}
			for r := range rounds {
				want := fmt.Sprintf("%d-%d", w, r)
				if _, err := c.Set(ctx(t), p, []byte(want), int64(r)); err != nil {
					errs <- fmt.Errorf("set %s round %d: %w", p, r, err)
					return
				}
				got, _, err := c.Get(ctx(t), p)
				if err != nil || string(got) != want {
					errs <- fmt.Errorf("get %s = %q, %v; want %q", p, got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	kids, _, err := c.Children(ctx(t), "/")
	if err != nil || len(kids) != workers {
		t.Fatalf("Children(/) = %d names, %v; want %d", len(kids), err, workers)
	}
}

// TestConnectionLostFailsInFlight: a write in flight when the connection
// breaks is indeterminate, a read is sent again on the next connection, and
// the client carries on with the same session.
func TestConnectionLostFailsInFlight(t *testing.T) {
	f := newFakeServer(t, func(f *fakeServer) { f.dropPath = "/drop" })
	c := dial(t, f)
	session := c.Session()
	_, err := c.Set(ctx(t), "/drop", []byte("x"), AnyVersion)
	if !errors.Is(err, ErrConnectionLost) || !IsIndeterminate(err) {
		t.Fatalf("Set on a dropped connection: %v (indeterminate %v), want CONNECTION_LOST, indeterminate", err, IsIndeterminate(err))
	}
	if _, _, err := c.Create(ctx(t), "/later", nil); err != nil {
		t.Fatalf("Create after the loss: %v", err)
	}
	if c.Session() != session {
		t.Fatalf("session %s became %s", session, c.Session())
	}
	// A read of /drop is sent again after every drop, until its context ends.
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, _, err := c.Get(short, "/drop"); !errors.Is(err, ErrTimeout) || IsIndeterminate(err) {
		t.Fatalf("Get on a dropping path: %v, want TIMEOUT, not indeterminate", err)
	}
	if n := f.countOps(wire.OpHello); n < 3 {
		t.Fatalf("%d hellos, want the Dial's and at least two resumes", n)
	}
}

func TestContextEndsWait(t *testing.T) {
	f := newFakeServer(t, func(f *fakeServer) { f.hangPath = "/hang" })
	c := dial(t, f)
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Set(short, "/hang", nil, AnyVersion)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrTimeout) || !IsIndeterminate(err) {
		t.Fatalf("Set past its deadline: %v, want TIMEOUT wrapping DeadlineExceeded, indeterminate", err)
	}
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, _, err := c.Get(canceled, "/hang"); !errors.Is(err, context.Canceled) || IsIndeterminate(err) {
		t.Fatalf("Get with canceled ctx: %v", err)
	}
	// The connection is still fine.
	if err := c.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping after a timed-out request: %v", err)
	}
}

func TestSessionExpiredEvent(t *testing.T) {
	f := newFakeServer(t)
	events := make(chan *wire.Response, 1)
	c := dial(t, f, func(cfg *Config) { cfg.OnEvent = func(ev *wire.Response) { events <- ev } })
	f.push(wire.Event{Event: wire.EventSession, State: wire.SessionExpired})
	select {
	case ev := <-events:
		if ev.Event != wire.EventSession || ev.State != wire.SessionExpired {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event delivered")
	}
	if !c.Expired() {
		t.Fatal("Expired() false after the session expired event")
	}
	for deadline := time.Now().Add(5 * time.Second); c.State() != Expired; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("state %v after the session expired event, want Expired", c.State())
		}
	}
	if err := c.Ping(ctx(t)); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("Ping after expiry: %v, want SESSION_EXPIRED", err)
	}
}

func TestDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	_, err = Dial(ctx(t), Config{Endpoints: []string{dead}, Logger: quiet, DialTimeout: time.Second})
	var e *Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || e.Message != dead+": connection refused" {
		t.Fatalf("Dial to nothing: %v", err)
	}
	if _, err := Dial(ctx(t), Config{Logger: quiet}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("Dial without endpoints: %v", err)
	}

	f := newFakeServer(t)
	c, err := Dial(ctx(t), Config{Endpoints: []string{dead, f.addr()}, Logger: quiet, SessionTimeout: 3 * time.Second})
	if err != nil {
		t.Fatalf("Dial with a dead first endpoint: %v", err)
	}
	defer c.Close(ctx(t))
	if c.SessionTimeout() != 3*time.Second {
		t.Fatalf("SessionTimeout %v", c.SessionTimeout())
	}
}

func TestCloseEndsSession(t *testing.T) {
	f := newFakeServer(t)
	a := dial(t, f)
	if _, _, err := a.Create(ctx(t), "/eph", nil, Ephemeral()); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(ctx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := a.Close(ctx(t)); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := a.Ping(ctx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close: %v, want CLOSED", err)
	}
	b := dial(t, f)
	if st, err := b.Exists(ctx(t), "/eph"); err != nil || st != nil {
		t.Fatalf("ephemeral survived Close: %+v %v", st, err)
	}
	if !slices.Contains(f.seenOps(), wire.OpClose) {
		t.Fatal("server never got close")
	}
}

func TestPingsWhenIdle(t *testing.T) {
	f := newFakeServer(t)
	dial(t, f, func(cfg *Config) { cfg.SessionTimeout = 150 * time.Millisecond })
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		pings := 0
		for _, op := range f.seenOps() {
			if op == wire.OpPing {
				pings++
			}
		}
		if pings >= 2 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no pings from an idle client; server saw %s", strings.Join(f.seenOps(), ","))
}
