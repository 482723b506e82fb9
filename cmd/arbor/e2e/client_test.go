package e2e

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
)

// stateLog collects a client's states.
type stateLog struct {
	mu     sync.Mutex
	states []client.State
	done   chan struct{}
}

func watchStates(c *client.Client) *stateLog {
	l := &stateLog{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for s := range c.States() {
			l.mu.Lock()
			l.states = append(l.states, s)
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *stateLog) get() []client.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.states)
}

// The Go client keeps its one session through kill -9 of the member it is
// connected to and then of the leader: calls made meanwhile succeed once it
// has resumed elsewhere, its ephemeral node stays, and it reports each state
// change once.
func TestClientSurvivesKillOfItsMemberAndOfTheLeader(t *testing.T) {
	c := startCluster(t, 3)
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.ClientAddr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.Dial(ctx, client.Config{Endpoints: eps, SessionTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	states := watchStates(cl)
	session := cl.Session()
	if _, _, err := cl.Create(ctx, "/gc", []byte("mine"), client.Ephemeral()); err != nil {
		t.Fatal(err)
	}
	index := func(name string) int {
		for i, m := range c.Members {
			if m.Name == name {
				return i
			}
		}
		t.Fatalf("no member %q", name)
		return -1
	}
	check := func(step string) {
		t.Helper()
		// A write: it waits for the resumed session, then succeeds. One in
		// flight while the leader is lost may or may not have been applied
		// (as in every consensus system); it is safe to repeat here.
		for {
			_, err := cl.Set(ctx, "/gc", []byte(step), client.AnyVersion)
			if err == nil {
				break
			}
			if !client.IsIndeterminate(err) {
				t.Fatalf("%s: set: %v", step, err)
			}
			t.Logf("%s: set: %v; again", step, err)
			time.Sleep(50 * time.Millisecond)
		}
		data, st, err := cl.Get(ctx, "/gc")
		if err != nil || string(data) != step || st.EphemeralOwner != session {
			t.Fatalf("%s: get = %q %+v %v", step, data, st, err)
		}
		if cl.Session() != session {
			t.Fatalf("%s: session %s, want the same %s", step, cl.Session(), session)
		}
	}

	first := index(cl.Server())
	c.Kill(first)
	check("after killing its member")
	c.start(first)
	c.waitReady(first, 30*time.Second)

	lead := c.findLeader(10 * time.Second)
	c.Kill(lead)
	check("after killing the leader")
	if cl.State() != client.Resumed && cl.State() != client.Connected {
		t.Fatalf("state %v after the failovers", cl.State())
	}

	if err := cl.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case <-states.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the client's States channel is still open 10s after Close")
	}
	got := states.get()
	if len(got) < 4 || got[0] != client.Connected || got[len(got)-1] != client.Closed {
		t.Fatalf("states %v: want Connected first, Closed last, a disconnect and a resume between", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("state %v reported twice in a row: %v", got[i], got)
		}
	}
	for _, s := range got {
		if s == client.Expired || s == client.Jeopardy {
			t.Fatalf("states %v: the session was never at risk of expiry", got)
		}
	}
	if !slices.Contains(got, client.Disconnected) || !slices.Contains(got, client.Resumed) {
		t.Fatalf("states %v: want a Disconnected and a Resumed", got)
	}
	if _, err := cl.Exists(ctx, "/gc"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("a call after Close: %v, want ErrClosed", err)
	}
}
