package bench

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// fakeCluster kills and restarts members of a memSystem by name only; the
// store keeps working, as a cluster that fails over instantly would.
type fakeCluster struct {
	leader   string
	killed   []string
	restarts []string
}

func (c *fakeCluster) Members() []string        { return []string{"m1", "m2", "m3"} }
func (c *fakeCluster) Endpoint(m string) string { return m + ":1" }
func (c *fakeCluster) Leader(context.Context) (string, error) {
	return c.leader, nil
}

func (c *fakeCluster) Kill(m string) error {
	c.killed = append(c.killed, m)
	c.leader = map[string]string{"m1": "m2", "m2": "m3", "m3": "m1"}[m]
	return nil
}

func (c *fakeCluster) Restart(_ context.Context, m string) error {
	c.restarts = append(c.restarts, m)
	return nil
}

func TestFailoverKillsTheLeaderAndWritesThroughTheOthers(t *testing.T) {
	sys := newMemSystem()
	env := sys.env(Options{Ops: 3, Sessions: 5})
	cl := &fakeCluster{leader: "m1"}
	env.Cluster = cl
	var dialed [][]string
	orig := env.DialAt
	env.DialAt = func(ctx context.Context, eps []string) (Store, error) {
		dialed = append(dialed, eps)
		return orig(ctx, eps)
	}
	res, err := Run(t.Context(), "failover", env)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 3 || res.Errors != 0 {
		t.Fatalf("ops %d errors %d (%s), want 3 rounds", res.Ops, res.Errors, res.FirstError)
	}
	if got := cl.killed; len(got) != 3 || got[0] != "m1" || got[1] != "m2" || got[2] != "m3" {
		t.Fatalf("killed %v, want each round's leader: m1 m2 m3", got)
	}
	if len(cl.restarts) != 3 {
		t.Fatalf("restarted %v, want every killed member back", cl.restarts)
	}
	// The admin and the 5 sessions that live through the kills dial the
	// cluster's endpoints; the write after the first kill goes through m2
	// and m3 only.
	if len(dialed) < 7 {
		t.Fatalf("dialed %v", dialed)
	}
	for _, eps := range dialed[:6] {
		if !slices.Equal(eps, env.Endpoints) {
			t.Fatalf("the admin and the long-lived sessions dialed %v, want %v", dialed[:6], env.Endpoints)
		}
	}
	if eps := dialed[6]; len(eps) != 2 || eps[0] != "m2:1" || eps[1] != "m3:1" {
		t.Fatalf("the first write's session dialed %v, want the survivors m2:1 m3:1", eps)
	}
	if res.SessionsLost != 0 {
		t.Fatalf("%d sessions lost", res.SessionsLost)
	}
	if sys.open.Load() != 0 {
		t.Fatalf("%d sessions left open", sys.open.Load())
	}
}

func TestFailoverNeedsAClusterItStarted(t *testing.T) {
	_, err := Run(t.Context(), "failover", newMemSystem().env(Options{}))
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
}
