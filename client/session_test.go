package client

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// waitDone returns when ctx is done, failing the test after limit.
func waitDone(t *testing.T, ctx context.Context, limit time.Duration) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(limit):
		t.Fatalf("context not done within %v", limit)
	}
}

// TestJeopardyBeforeClusterExpiry stops every member from renewing the
// session (they are cut off from the leader without knowing it): the client
// must report Jeopardy and cancel Context no later than the instant the
// cluster expires the session, and then learn of the expiry.
func TestJeopardyBeforeClusterExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeCluster(t, 2)
		// Answers that take longer than the margin to come back: a client
		// that counted from the answer rather than from the ping would be
		// late.
		fc.each(func(f *fakeServer) { f.pingDelay = 4 * sessionMargin(testTimeout) })
		c := dialCluster(t, fc)
		expectStates(t, c, Connected)
		time.Sleep(5 * time.Second) // renewed by pings all along
		if c.State() != Connected || c.Context().Err() != nil {
			t.Fatalf("state %v, context %v while renewed", c.State(), c.Context().Err())
		}
		fc.each(func(f *fakeServer) { f.frozen = true })
		expiry := fc.members[0].expiresAt(c.Session())
		sess := c.Context()

		waitDone(t, sess, 2*testTimeout)
		jeopardy := time.Now()
		if jeopardy.After(expiry) {
			t.Fatalf("Jeopardy %v after the cluster expired the session", jeopardy.Sub(expiry))
		}
		t.Logf("Jeopardy %v before the expiry", expiry.Sub(jeopardy))
		if early := expiry.Sub(jeopardy); early > 6*sessionMargin(testTimeout) {
			t.Fatalf("Jeopardy %v before the expiry: needlessly early", early)
		}
		if cause := context.Cause(sess); !errors.Is(cause, ErrJeopardy) {
			t.Fatalf("Context cause %v, want ErrJeopardy", cause)
		}
		// On the way the client moved off members that stopped renewing.
		for s := nextState(t, c); s != Jeopardy; s = nextState(t, c) {
			if s != Disconnected && s != Resumed {
				t.Fatalf("state %v before Jeopardy", s)
			}
		}
		for s := nextState(t, c); s != Expired; s = nextState(t, c) {
			if s != Disconnected && s != Resumed && s != Jeopardy {
				t.Fatalf("state %v before Expired", s)
			}
		}
		if time.Now().Before(expiry) {
			t.Fatalf("Expired %v before the cluster expired the session", time.Until(expiry))
		}
		if err := c.Ping(ctx(t)); !errors.Is(err, ErrSessionExpired) || !c.Expired() {
			t.Fatalf("Ping after expiry: %v (Expired %v), want SESSION_EXPIRED", err, c.Expired())
		}
		if cause := context.Cause(c.Context()); !errors.Is(cause, ErrSessionExpired) {
			t.Fatalf("Context cause after expiry %v, want SESSION_EXPIRED", cause)
		}
		if cause := context.Cause(sess); !errors.Is(cause, ErrJeopardy) {
			t.Fatalf("the Jeopardy context's cause became %v", cause)
		}
		if err := c.Close(ctx(t)); err != nil {
			t.Fatalf("Close after expiry: %v", err)
		}
		expectStates(t, c, Closed)
	})
}

// TestBusyConnectionStillPings: requests renew the session on the server,
// but only ping answers move the client's deadline, so the client pings
// every timeout/3 however busy it is.
func TestBusyConnectionStillPings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeCluster(t, 1)
		c := dialCluster(t, fc)
		for range 1000 { // 10 s of a request every 10 ms
			if err := c.Sync(ctx(t), "/"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if n := fc.countOps(wire.OpPing); n < 9 {
			t.Fatalf("%d pings in 10s, want one every second", n)
		}
		expectStates(t, c, Connected)
		noMoreStates(t, c)
	})
}

// TestOnlyRenewalsMoveTheDeadline: with ping answers that carry no
// renewed_ago_ms (the server today), the deadline stays where Dial put it;
// once answers carry it again the client leaves Jeopardy.
func TestOnlyRenewalsMoveTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeCluster(t, 1)
		fc.each(func(f *fakeServer) { f.noRenewal = true })
		start := time.Now()
		c := dialCluster(t, fc)
		old := c.Context()
		waitDone(t, old, 2*testTimeout)
		if got, want := time.Since(start), testTimeout-sessionMargin(testTimeout); got != want {
			t.Fatalf("Jeopardy %v after the hello, want timeout - margin = %v", got, want)
		}
		expectStates(t, c, Connected, Jeopardy)

		fc.each(func(f *fakeServer) { f.noRenewal = false })
		expectStates(t, c, Connected) // the connection Dial opened: Connected again
		if c.Context().Err() != nil || old.Err() == nil {
			t.Fatalf("after a renewal: new context %v, old %v; want a fresh one and the old one cancelled", c.Context().Err(), old.Err())
		}
		if err := c.Close(ctx(t)); err != nil {
			t.Fatal(err)
		}
		expectStates(t, c, Closed)
	})
}

// TestResumePingsUntilRenewed: after a resume the client pings at once and
// then quickly until a renewal is confirmed, then every timeout/3.
func TestResumePingsUntilRenewed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeCluster(t, 2)
		c := dialCluster(t, fc)
		fc.member("m2").set(func(f *fakeServer) { f.noRenewal = true })
		pings := fc.countOps(wire.OpPing)
		fc.member("m1").dropAll()
		expectStates(t, c, Connected, Disconnected, Resumed)
		time.Sleep(quickPings*quickPingInterval + time.Millisecond)
		if n := fc.countOps(wire.OpPing) - pings; n != 1+quickPings {
			t.Fatalf("%d pings right after the resume, want %d", n, 1+quickPings)
		}
		pings = fc.countOps(wire.OpPing)
		time.Sleep(testTimeout/3 - quickPingInterval - time.Millisecond)
		if n := fc.countOps(wire.OpPing) - pings; n != 0 {
			t.Fatalf("%d more quick pings, want none before timeout/3", n)
		}
	})
}

func TestPingUnavailableMovesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeCluster(t, 2)
		c := dialCluster(t, fc)
		fc.member("m1").set(func(f *fakeServer) { f.unavailable = true })
		expectStates(t, c, Connected, Disconnected, Resumed)
		if c.Server() != "m2" || c.Context().Err() != nil {
			t.Fatalf("on %s, context %v; want m2 and a live context", c.Server(), c.Context().Err())
		}
	})
}

// TestStaleRenewalMovesOn: a member whose renewals stopped being confirmed
// is left while there is time to resume elsewhere, before Jeopardy.
func TestStaleRenewalMovesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeCluster(t, 2)
		c := dialCluster(t, fc)
		fc.member("m1").set(func(f *fakeServer) { f.frozen = true })
		expectStates(t, c, Connected, Disconnected, Resumed)
		if c.Server() != "m2" {
			t.Fatalf("on %s, want m2", c.Server())
		}
		time.Sleep(3 * testTimeout)
		noMoreStates(t, c)
		if c.Context().Err() != nil {
			t.Fatalf("context %v", context.Cause(c.Context()))
		}
	})
}

func TestResumeRefusedIsFinal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(s *fakeSession)
		also   error
	}{
		{"expired", func(s *fakeSession) { s.ended = true }, ErrSessionExpired},
		{"wrong secret", func(s *fakeSession) { s.secret = "changed" }, ErrAuthFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fc := newFakeCluster(t, 2)
				c := dialCluster(t, fc)
				fc.each(func(f *fakeServer) { tc.break_(f.sessions[c.Session()]) })
				fc.member("m1").dropAll()
				expectStates(t, c, Connected, Disconnected, Expired)
				_, _, err := c.Get(ctx(t), "/")
				if !errors.Is(err, ErrSessionExpired) || !errors.Is(err, tc.also) || !c.Expired() {
					t.Fatalf("Get after a refused resume: %v, want SESSION_EXPIRED and %v", err, tc.also)
				}
				if cause := context.Cause(c.Context()); !errors.Is(cause, ErrSessionExpired) {
					t.Fatalf("Context cause %v, want SESSION_EXPIRED", cause)
				}
				hellos := len(fc.seenHellos())
				time.Sleep(10 * time.Second)
				if n := len(fc.seenHellos()); n != hellos {
					t.Fatalf("%d more hellos after the refusal: nothing may recreate the session", n-hellos)
				}
				if err := c.Close(ctx(t)); err != nil {
					t.Fatalf("Close after expiry: %v", err)
				}
				expectStates(t, c, Closed)
			})
		})
	}
}

// TestSessionExpiredAnswer: SESSION_EXPIRED on any request ends the session.
func TestSessionExpiredAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeCluster(t, 1)
		c := dialCluster(t, fc)
		if _, _, err := c.Get(ctx(t), "/fail/SESSION_EXPIRED"); !errors.Is(err, ErrSessionExpired) {
			t.Fatalf("Get: %v", err)
		}
		expectStates(t, c, Connected, Expired)
		if err := c.Ping(ctx(t)); !errors.Is(err, ErrSessionExpired) {
			t.Fatalf("Ping after expiry: %v", err)
		}
	})
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Connected: "Connected", Disconnected: "Disconnected",
		Resumed: "Resumed", Jeopardy: "Jeopardy", Expired: "Expired", Closed: "Closed", 0: "State(0)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}

// TestStatesBound: past StateBuffer unread changes the oldest is dropped,
// the rest stay in order, and the latest is always there.
func TestStatesBound(t *testing.T) {
	c := newClient(withDefaults(Config{Endpoints: []string{"nowhere:1"}, Logger: quiet}))
	defer c.stopRun()
	var reported []State
	for i := range StateBuffer + 10 {
		c.mu.Lock()
		c.jeopardy = i%2 == 0 // Jeopardy and Disconnected in turn
		c.setStateLocked()
		c.mu.Unlock()
		reported = append(reported, c.State())
	}
	for i, want := range reported[len(reported)-StateBuffer:] {
		if got := <-c.States(); got != want {
			t.Fatalf("state %d: %v, want %v", i, got, want)
		}
	}
	select {
	case s := <-c.States():
		t.Fatalf("more than StateBuffer states kept: %v", s)
	default:
	}
}
