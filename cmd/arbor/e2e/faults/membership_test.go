package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arbor-db/arbor/arbortest/proc"
	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/server"
)

// memberStep is one membership change made while a fault is on.
type memberStep struct {
	join  bool // join a new member; otherwise remove the newest joined one
	fault faultKind
}

// TestFaultsMembership: a member joins by gossip while the leader is
// killed, and is removed again while a follower is cut off; the histories
// of clients on every member stay linearizable and the members end with
// the same state, as in the other runs. Under ARBOR_FAULT_LONG (a Go
// duration) it repeats runs of random join and removal steps, each under a
// random fault, for that long.
func TestFaultsMembership(t *testing.T) {
	requireEnv(t)
	v := os.Getenv("ARBOR_FAULT_LONG")
	if v == "" {
		fig := runMembershipFaults(t, []memberStep{{true, faultKillLeader}, {false, faultPartition}}, 3, faultHold)
		logFigures(t, 1, fig)
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("ARBOR_FAULT_LONG=%q: %v", v, err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	runs := 0
	for deadline := time.Now().Add(d); time.Now().Before(deadline) && !t.Failed(); runs++ {
		var steps []memberStep
		for range 1 + rng.IntN(3) {
			steps = append(steps, memberStep{true, allFaults[rng.IntN(len(allFaults))]},
				memberStep{false, allFaults[rng.IntN(len(allFaults))]})
		}
		runSeed := rng.Uint64()
		t.Run(fmt.Sprintf("run%03d", runs), func(t *testing.T) {
			t.Logf("seed %d, steps %v", runSeed, steps)
			logFigures(t, 1, runMembershipFaults(t, steps, runSeed, faultHold))
		})
	}
}

// runMembershipFaults is runFaults with a membership change under each
// fault. The workload gets its own view of the first three members, so
// that the test can add and drop members while it runs; the final checks
// cover every member at the end.
func runMembershipFaults(t *testing.T, steps []memberStep, seed uint64, hold time.Duration) runFigures {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x3e3b))
	c := newCluster(t, 3, clusterOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := createParents(ctx, c); err != nil {
		t.Fatal(err)
	}
	// The view lends the workload its addresses only; the test drives c.
	view := &cluster{t: t, dir: c.dir, Cluster: &proc.Cluster{Members: slices.Clone(c.Members)}}
	r := startRun(t, ctx, view, seed)
	fig := runFigures{faults: map[faultKind]int{}}
	time.Sleep(time.Second)
	next := len(c.Members) + 1
	for _, s := range steps {
		if s.join {
			name := fmt.Sprintf("m%d", next)
			i := c.joinMember(next)
			next++
			f := c.inject(s.fault, rng)
			t.Logf("join %s under %s: %s", name, s.fault, f.desc)
			time.Sleep(hold)
			f.end()
			took := c.waitHealthy(60 * time.Second)
			took += c.waitVoter(i, 60*time.Second)
			t.Logf("%s is a voter; healthy after %v", name, took.Round(time.Millisecond))
			fig.faults[s.fault]++
			fig.recoveryMax = max(fig.recoveryMax, took)
		} else {
			target := len(c.Members) - 1
			if target < 3 {
				continue // nothing joined to remove
			}
			f := c.injectSparing(s.fault, target, rng)
			t.Logf("remove %s under %s: %s", c.Members[target].Name, s.fault, f.desc)
			start := time.Now()
			c.removeMember(target, f.victim, hold+30*time.Second)
			if err := c.wait(target, 30*time.Second); err == nil || !strings.Contains(c.Members[target].Log(), "removed from the cluster") {
				t.Errorf("%s after its removal: exit %v; want a failure saying it was removed", c.Members[target].Name, err)
			}
			c.Members = c.Members[:target]
			time.Sleep(max(0, hold-time.Since(start)))
			f.end()
			took := c.waitHealthy(60 * time.Second)
			t.Logf("removed; healthy after %v", took.Round(time.Millisecond))
			fig.faults[s.fault]++
			fig.recoveryMax = max(fig.recoveryMax, took)
		}
		time.Sleep(time.Second)
	}
	r.c = c
	r.finish(t, &fig)
	return fig
}

// joinMember starts member mN on 127.0.0.N as uid baseUID+N-1, on an
// empty data dir, joining the running members' gossip, and returns its
// index.
func (c *cluster) joinMember(n int) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	i, err := c.Add(ctx, fmt.Sprintf("m%d", n), fmt.Sprintf("127.0.0.%d", n))
	if err != nil {
		c.t.Fatal(err)
	}
	return i
}

// injectSparing injects a fault of kind k whose victim is not member
// spare (faults pick their follower at random), trying a few times.
func (c *cluster) injectSparing(k faultKind, spare int, rng *rand.Rand) fault {
	c.t.Helper()
	for range 8 {
		f := c.inject(k, rng)
		if f.victim != spare {
			return f
		}
		f.end()
		c.waitHealthy(30 * time.Second)
	}
	c.t.Fatalf("fault %q kept picking %s", k, c.Members[spare].Name)
	return fault{}
}

// removeMember posts the removal of member i to the running members other
// than avoid, one after the other, until one takes it (a change cut short
// by the fault is posted again; NO_NODE then means it was done).
func (c *cluster) removeMember(i, avoid int, within time.Duration) {
	c.t.Helper()
	body, _ := json.Marshal(server.MemberChange{Op: "remove", Name: c.Members[i].Name})
	var last string
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for j, m := range c.Members {
			if j == avoid || !m.Running() || m.Paused() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+m.ClientAddr+server.AdminMembersPath, bytes.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			cancel()
			if err != nil {
				last = err.Error()
				continue
			}
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound {
				c.t.Logf("removal of %s through %s: %s %s", c.Members[i].Name, m.Name, resp.Status, strings.TrimSpace(b.String()))
				return
			}
			last = resp.Status + " " + b.String()
		}
	}
	c.t.Fatalf("removing %s: not done within %v: %s", c.Members[i].Name, within, last)
}

// waitVoter waits until a majority's leader reports member i as a live
// voter: a follower, or the leader, since a member that has just joined
// may win the election that a killed leader leaves.
func (c *cluster) waitVoter(i int, within time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	var got string
	for deadline := start.Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		l := c.waitLeader(within)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		cl, err := c.dial(ctx, l)
		if err == nil {
			ms, _ := cl.Members(ctx) // none on an error: asked again
			cl.Close(ctx)
			for _, m := range ms {
				if m.Name == c.Members[i].Name {
					got = fmt.Sprintf("%s alive=%t", m.Role, m.Alive)
					if (m.Role == wire.RoleFollower || m.Role == wire.RoleLeader) && m.Alive {
						cancel()
						return time.Since(start)
					}
				}
			}
		}
		cancel()
	}
	c.t.Fatalf("%s is not a live voter within %v (last seen: %s)", c.Members[i].Name, within, got)
	return 0
}
