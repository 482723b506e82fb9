package client

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// The tests of this file and session_test.go run in synctest bubbles on a
// fakeCluster: time is fake, so timeouts and backoffs are exact and cost
// nothing, and waiting on a channel with time.After is waiting for what
// the client does next, not a guess.

const testTimeout = 3 * time.Second // session timeout: pings every second

func dialCluster(t *testing.T, fc *fakeCluster, mod ...func(*Config)) *Client {
	t.Helper()
	// NoDiscovery: the fake's one-shot faults are for the calls under
	// test, not for the members request discovery sends. InOrder: the
	// tests say which member the client is on, and moves to.
	cfg := Config{Endpoints: fc.endpoints(), NetDialContext: fc.dial, Logger: quiet, SessionTimeout: testTimeout,
		NoDiscovery: true, InOrder: true}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

// nextState returns the next state the client reports.
func nextState(t *testing.T, c *Client) State {
	t.Helper()
	select {
	case s, ok := <-c.States():
		if !ok {
			t.Fatal("States closed")
		}
		return s
	case <-time.After(time.Minute):
		t.Fatalf("no state change within a minute; state %v", c.State())
	}
	return 0
}

func expectStates(t *testing.T, c *Client, want ...State) {
	t.Helper()
	for i, w := range want {
		if got := nextState(t, c); got != w {
			t.Fatalf("state %d: %v, want %v (sequence %v)", i, got, w, want)
		}
	}
}

// noMoreStates checks nothing else was reported once every goroutine of the
// bubble is blocked.
func noMoreStates(t *testing.T, c *Client) {
	t.Helper()
	synctest.Wait()
	select {
	case s := <-c.States():
		t.Fatalf("unexpected state %v", s)
	default:
	}
}

func TestResumeOnNextMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeCluster(t, 3)
		c := dialCluster(t, fc, func(cfg *Config) { cfg.AuthToken = "tok" })
		if _, _, err := c.Create(ctx(t), "/a", []byte("x")); err != nil {
			t.Fatal(err)
		}
		session, zxid := c.Session(), c.LastZxid()
		expectStates(t, c, Connected)
		for _, want := range []string{"m2", "m3", "m1"} { // in turn, cycling
			fc.member(c.Server()).dropAll()
			expectStates(t, c, Disconnected, Resumed)
			if c.Server() != want || c.Session() != session || c.State() != Resumed {
				t.Fatalf("after a drop: server %s session %s state %v; want %s %s Resumed", c.Server(), c.Session(), c.State(), want, session)
			}
		}
		hellos := fc.seenHellos()
		if len(hellos) != 4 {
			t.Fatalf("%d hellos, want 4", len(hellos))
		}
		for _, h := range hellos[1:] {
			if h.Session != session || h.Secret != "secret-1" || h.LastZxid != zxid || h.TimeoutMs != 0 ||
				h.Auth == nil || h.Auth.Token != "tok" {
				t.Fatalf("resume hello %+v, want session %s, its secret, last_zxid %d, the auth token", h, session, zxid)
			}
		}
		if data, _, err := c.Get(ctx(t), "/a"); err != nil || string(data) != "x" {
			t.Fatalf("Get after resumes = %q, %v", data, err)
		}
		noMoreStates(t, c)
		// The member hangs up once it has answered close: that is no
		// Disconnected.
		if err := c.Close(ctx(t)); err != nil {
			t.Fatal(err)
		}
		expectStates(t, c, Closed)
		if _, ok := <-c.States(); ok {
			t.Fatal("States still open after Closed")
		}
	})
}

func TestReadsInFlightAreSentAgain(t *testing.T) {
	reads := []struct {
		name string
		path string
		call func(ctx context.Context, c *Client) error
	}{
		{"get", "/r", func(ctx context.Context, c *Client) error { _, _, err := c.Get(ctx, "/r"); return err }},
		{"exists", "/r", func(ctx context.Context, c *Client) error { _, err := c.Exists(ctx, "/r"); return err }},
		{"children", "/r", func(ctx context.Context, c *Client) error { _, _, err := c.Children(ctx, "/r"); return err }},
		{"sync", "/r", func(ctx context.Context, c *Client) error { return c.Sync(ctx, "/r") }},
		{"members", "", func(ctx context.Context, c *Client) error { _, err := c.Members(ctx); return err }},
		{"ping", "", func(ctx context.Context, c *Client) error { return c.Ping(ctx) }},
	}
	for _, tc := range reads {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fc := newFakeCluster(t, 2)
				c := dialCluster(t, fc)
				if _, _, err := c.Create(ctx(t), "/r", nil); err != nil {
					t.Fatal(err)
				}
				fc.member("m1").set(func(f *fakeServer) { f.once[tc.path] = "drop" })
				if err := tc.call(ctx(t), c); err != nil {
					t.Fatalf("%s across a drop: %v", tc.name, err)
				}
				if c.Server() != "m2" {
					t.Fatalf("answered by %s, want m2 after the drop", c.Server())
				}
				expectStates(t, c, Connected, Disconnected, Resumed)
			})
		})
	}
}

func TestWritesInFlightAreIndeterminate(t *testing.T) {
	writes := []struct {
		name string
		call func(ctx context.Context, c *Client) error
	}{
		{"create", func(ctx context.Context, c *Client) error { _, _, err := c.Create(ctx, "/w/new", nil); return err }},
		{"set", func(ctx context.Context, c *Client) error {
			_, err := c.Set(ctx, "/w", []byte("y"), AnyVersion)
			return err
		}},
		{"delete", func(ctx context.Context, c *Client) error { return c.Delete(ctx, "/w", AnyVersion, Recursive()) }},
		{"multi", func(ctx context.Context, c *Client) error {
			_, err := c.Multi(ctx, OpCheck("/w", AnyVersion), OpSet("/w", nil, AnyVersion))
			return err
		}},
		{"lock", func(ctx context.Context, c *Client) error {
			_, err := c.Do(ctx, &wire.Request{Op: wire.OpLock, Path: "/w"})
			return err
		}},
		{"unlock", func(ctx context.Context, c *Client) error {
			_, err := c.Do(ctx, &wire.Request{Op: wire.OpUnlock, Path: "/w"})
			return err
		}},
		{"elect", func(ctx context.Context, c *Client) error {
			_, err := c.Do(ctx, &wire.Request{Op: wire.OpElect, Path: "/w"})
			return err
		}},
		{"resign", func(ctx context.Context, c *Client) error {
			_, err := c.Do(ctx, &wire.Request{Op: wire.OpResign, Path: "/w"})
			return err
		}},
	}
	for _, tc := range writes {
		for _, action := range []string{"drop", "applyDrop"} { // lost before or after applying
			t.Run(tc.name+"/"+action, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					fc := newFakeCluster(t, 2)
					c := dialCluster(t, fc)
					if _, _, err := c.Create(ctx(t), "/w", nil); err != nil {
						t.Fatal(err)
					}
					fc.member("m1").set(func(f *fakeServer) {
						// A multi has no path of its own.
						f.once["/w"], f.once["/w/new"], f.once[""] = action, action, action
					})
					err := tc.call(ctx(t), c)
					var e *Error
					if !errors.Is(err, ErrConnectionLost) || !IsIndeterminate(err) || !errors.As(err, &e) {
						t.Fatalf("%s across a drop: %v, want CONNECTION_LOST, indeterminate", tc.name, err)
					}
					// The client carries on, on the other member.
					if err := c.Ping(ctx(t)); err != nil || c.Server() != "m2" {
						t.Fatalf("Ping after the drop: %v on %s", err, c.Server())
					}
				})
			})
		}
	}
}

func TestCallsDuringOutageWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeCluster(t, 2)
		// Long enough for the outage to stay clear of the deadline.
		c := dialCluster(t, fc, func(cfg *Config) { cfg.SessionTimeout = 10 * time.Second })
		expectStates(t, c, Connected)
		fc.each(func(f *fakeServer) { f.refuse = true })
		fc.member("m1").dropAll()
		expectStates(t, c, Disconnected)

		created := make(chan error, 1)
		go func() { _, _, err := c.Create(ctx(t), "/during", []byte("x")); created <- err }()
		short, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if _, _, err := c.Get(short, "/"); !errors.Is(err, ErrTimeout) || IsIndeterminate(err) {
			t.Fatalf("Get bounded by 500ms during the outage: %v, want TIMEOUT, determinate", err)
		}
		time.Sleep(2 * time.Second)
		select {
		case err := <-created:
			t.Fatalf("Create returned during the outage: %v", err)
		default:
		}
		fc.each(func(f *fakeServer) { f.refuse = false })
		if err := <-created; err != nil {
			t.Fatalf("Create made during the outage: %v", err)
		}
		expectStates(t, c, Resumed)
		if n := fc.countOps(wire.OpCreate); n != 1 {
			t.Fatalf("%d creates reached the cluster, want 1", n)
		}
	})
}

// TestReconnectBackoff checks Config.ReconnectBackoff and
// MaxReconnectBackoff: the waits before attempts double up to the cap,
// jittered by ±50%, and start over after a resume.
func TestReconnectBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeCluster(t, 1)
		const base, ceiling = 100 * time.Millisecond, 400 * time.Millisecond
		c := dialCluster(t, fc, func(cfg *Config) {
			cfg.ReconnectBackoff, cfg.MaxReconnectBackoff = base, ceiling
			cfg.SessionTimeout = 10 * time.Second // the outages stay clear of the deadline
		})
		m1 := fc.member("m1")
		expectStates(t, c, Connected)
		for round := range 2 {
			m1.set(func(f *fakeServer) { f.refuse = true })
			before := len(m1.connAttempts())
			dropped := time.Now()
			m1.dropAll()
			time.Sleep(3 * time.Second)
			m1.set(func(f *fakeServer) { f.refuse = false })
			expectStates(t, c, Disconnected, Resumed)
			prev, wait := dropped, base
			for i, at := range m1.connAttempts()[before:] {
				if gap := at.Sub(prev); gap < wait/2 || gap >= wait*3/2 {
					t.Fatalf("round %d attempt %d came %v after the previous one, want %v±50%%", round, i, gap, wait)
				}
				prev, wait = at, min(2*wait, ceiling)
			}
		}
	})
}

func TestCloseDuringReconnect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		outage func(f *fakeServer)
	}{
		{"refused", func(f *fakeServer) { f.refuse = true }},
		{"stalled in the handshake", func(f *fakeServer) { f.stall = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { closeDuringOutage(t, tc.outage) })
		})
	}
}

func closeDuringOutage(t *testing.T, outage func(f *fakeServer)) {
	fc := newFakeCluster(t, 2)
	c := dialCluster(t, fc)
	fc.each(outage)
	fc.member("m1").dropAll()
	expectStates(t, c, Connected, Disconnected)
	waiting := make(chan error, 1)
	go func() { _, _, err := c.Get(ctx(t), "/"); waiting <- err }()
	time.Sleep(time.Second)

	start := time.Now()
	if err := c.Close(ctx(t)); err != nil {
		t.Fatalf("Close while reconnecting: %v", err)
	}
	if d := time.Since(start); d != 0 {
		t.Fatalf("Close while reconnecting took %v: it should just stop", d)
	}
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Fatalf("call waiting for the reconnection: %v, want CLOSED", err)
	}
	expectStates(t, c, Closed)
	if _, ok := <-c.States(); ok {
		t.Fatal("States still open after Closed")
	}
	if cause := context.Cause(c.Context()); !errors.Is(cause, ErrClosed) {
		t.Fatalf("Context cause %v, want CLOSED", cause)
	}
	if slices.Contains(fc.seenOps(), wire.OpClose) {
		t.Fatal("close sent though no member was reachable")
	}
}
