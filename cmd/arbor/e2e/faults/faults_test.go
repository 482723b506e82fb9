package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/arbor-db/arbor/server/servertest/lincheck"
)

// faultKind names one kind of fault.
type faultKind string

const (
	faultPartition      faultKind = "symmetric partition of a follower"
	faultOneWayToFollow faultKind = "one-way partition leader->follower"
	faultOneWayToLeader faultKind = "one-way partition follower->leader"
	faultIsolateLeader  faultKind = "leader isolation"
	faultKillLeader     faultKind = "kill -9 leader"
	faultKillFollower   faultKind = "kill -9 follower"
	faultPauseLeader    faultKind = "SIGSTOP/SIGCONT leader"
)

var allFaults = []faultKind{faultPartition, faultOneWayToFollow, faultOneWayToLeader,
	faultIsolateLeader, faultKillLeader, faultKillFollower, faultPauseLeader}

// faultHold is how long a fault lasts: several election timeouts (1s by
// default), so leaders step down, elections happen and clients time out.
const faultHold = 2500 * time.Millisecond

// fault is one injected fault.
type fault struct {
	kind   faultKind
	desc   string
	leader int    // the leader when it began
	victim int    // the member that can no longer serve
	end    func() // ends the fault
}

// inject starts a fault of kind k. Leader-targeted faults find the leader
// first.
func (c *cluster) inject(k faultKind, rng *rand.Rand) fault {
	c.t.Helper()
	f := fault{kind: k, leader: c.waitLeader(15 * time.Second)}
	f.desc, f.victim, f.end = c.startFault(k, f.leader, rng)
	return f
}

func (c *cluster) startFault(k faultKind, leader int, rng *rand.Rand) (desc string, victim int, end func()) {
	follower := (leader + 1 + rng.IntN(len(c.Members)-1)) % len(c.Members)
	var others []int
	for i := range c.Members {
		if i != leader {
			others = append(others, i)
		}
	}
	name := func(i int) string { return c.Members[i].Name }
	switch k {
	case faultPartition:
		var rest []int
		for i := range c.Members {
			if i != follower {
				rest = append(rest, i)
			}
		}
		c.partition([]int{follower}, rest)
		return fmt.Sprintf("%s cut off from the others", name(follower)), follower, c.heal
	case faultOneWayToFollow:
		c.blockPeer(leader, follower)
		return fmt.Sprintf("%s (leader) cannot send to %s", name(leader), name(follower)), follower, c.heal
	case faultOneWayToLeader:
		c.blockPeer(follower, leader)
		return fmt.Sprintf("%s cannot send to %s (leader)", name(follower), name(leader)), follower, c.heal
	case faultIsolateLeader:
		c.partition([]int{leader}, others)
		return fmt.Sprintf("%s (leader) isolated", name(leader)), leader, c.heal
	case faultKillLeader, faultKillFollower:
		victim := leader
		if k == faultKillFollower {
			victim = follower
		}
		c.Kill(victim)
		return fmt.Sprintf("%s killed", name(victim)), victim, func() { c.start(victim) }
	case faultPauseLeader:
		c.pause(leader)
		return fmt.Sprintf("%s (leader) paused", name(leader)), leader, func() { c.resume(leader) }
	}
	c.t.Fatalf("unknown fault %q", k)
	return "", -1, nil
}

// leaderFault reports whether k takes the leader away, so that the cluster
// must elect another.
func leaderFault(k faultKind) bool {
	return k == faultIsolateLeader || k == faultKillLeader || k == faultPauseLeader
}

// probeCutOff checks that the fault took effect: a new session cannot be
// opened through the victim (hello is a replicated write, which a member
// cut off from the leader, dead or paused cannot complete).
func (c *cluster) probeCutOff(f fault) error {
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	cl, err := c.dial(ctx, f.victim)
	if err == nil {
		cl.Close(ctx)
		return fmt.Errorf("fault %q (%s) had no effect: a session opened through %s", f.kind, f.desc, c.Members[f.victim].Name)
	}
	return nil
}

// waitHealthy waits until every member is running and ready and a
// majority agrees on a leader, and returns how long that took.
func (c *cluster) waitHealthy(within time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	for i := range c.Members {
		c.waitReady(i, within)
	}
	c.waitLeader(within)
	return time.Since(start)
}

// runFigures are what one run did.
type runFigures struct {
	ops, unknown, failed int
	snapInstalls         int // snapshots members installed from a leader
	faults               map[faultKind]int
	violations           []error
	recoveryMax          time.Duration
	locks                lincheck.LockFigures
}

// runFaults starts a 3-member cluster (with o) and a workload, applies
// faults one after the other (each held for hold, then ended, then the
// cluster given time to recover while the workload goes on), and checks
// everything at the end.
func runFaults(t *testing.T, faults []faultKind, seed uint64, hold time.Duration, o clusterOpts) runFigures {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0xfa17))
	c := newCluster(t, 3, o)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := createParents(ctx, c); err != nil {
		t.Fatal(err)
	}
	r := startRun(t, ctx, c, seed)
	fig := runFigures{faults: map[faultKind]int{}}
	time.Sleep(time.Second) // a stretch of healthy traffic first
	for _, k := range faults {
		f := c.inject(k, rng)
		t.Logf("fault: %s: %s", k, f.desc)
		time.Sleep(time.Second) // an election timeout: the fault has bitten
		if err := c.probeCutOff(f); err != nil {
			t.Error(err)
		}
		time.Sleep(hold - time.Second)
		f.end()
		took := c.waitHealthy(30 * time.Second)
		if leaderFault(k) {
			if l := c.waitLeader(10 * time.Second); l == f.leader {
				t.Errorf("fault %q (%s): %s still leads after it; the cluster never elected another", k, f.desc, c.Members[l].Name)
			}
		}
		t.Logf("healed: %s; healthy again after %v", k, took.Round(time.Millisecond))
		fig.faults[k]++
		fig.recoveryMax = max(fig.recoveryMax, took)
		time.Sleep(time.Second) // traffic on the healed cluster
	}
	r.finish(t, &fig)
	return fig
}

// snapshotOften makes members snapshot (and compact their logs) every
// few hundred entries, a few seconds of the workload: a follower cut off
// or killed for one fault falls behind the leader's log and catches up by
// installing a snapshot, with watchers and sessions on it.
var snapshotOften = clusterOpts{extra: []string{"--snapshot-entries", "200"}}

// TestFaultsNetwork: symmetric and one-way partitions and leader
// isolation, with clients on every member; the histories stay
// linearizable, local reads monotonic, watches complete, ephemerals gone
// with their session, and the members end with the same state. Members
// snapshot often, so a follower cut off catches up from a snapshot.
func TestFaultsNetwork(t *testing.T) {
	requireEnv(t)
	fig := runFaults(t, []faultKind{faultPartition, faultOneWayToFollow, faultOneWayToLeader, faultIsolateLeader}, 1, faultHold, snapshotOften)
	logFigures(t, 1, fig)
	if fig.snapInstalls == 0 {
		t.Errorf("no member installed a snapshot from a leader: the run did not test catching up from one")
	}
}

// TestFaultsProcess: kill -9 of the leader and of a follower (restarted on
// their data dirs), and a SIGSTOP'd leader that comes back after a new one
// was elected.
func TestFaultsProcess(t *testing.T) {
	requireEnv(t)
	fig := runFaults(t, []faultKind{faultKillLeader, faultKillFollower, faultPauseLeader}, 2, faultHold, clusterOpts{})
	logFigures(t, 1, fig)
}

func logFigures(t *testing.T, runs int, f runFigures) {
	t.Logf("figures: runs %d, operations %d (unknown outcome %d, failed %d), lock grants %d (lost while held %d, stale writes refused %d), faults %v, snapshot installs %d, violations %d, longest recovery %v",
		runs, f.ops, f.unknown, f.failed, f.locks.Grants, f.locks.Lost, f.locks.StaleRefused, f.faults, f.snapInstalls, len(f.violations), f.recoveryMax.Round(time.Millisecond))
}

// TestFaultsLong repeats runs of random faults for $ARBOR_FAULT_LONG (a Go
// duration such as 1h) and reports the figures; without it, it skips. Run
// it with -v -timeout to see the figures of every run as it goes.
func TestFaultsLong(t *testing.T) {
	requireEnv(t)
	v := os.Getenv("ARBOR_FAULT_LONG")
	if v == "" {
		t.Skip("set ARBOR_FAULT_LONG=1h (any Go duration) for the long fault suite")
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("ARBOR_FAULT_LONG=%q: %v", v, err)
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ARBOR_FAULT_SEED"); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("ARBOR_FAULT_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (ARBOR_FAULT_SEED reruns it)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	total := runFigures{faults: map[faultKind]int{}}
	runs := 0
	for deadline := time.Now().Add(d); time.Now().Before(deadline) && !t.Failed(); {
		faults := make([]faultKind, 3+rng.IntN(4))
		for i := range faults {
			faults[i] = allFaults[rng.IntN(len(allFaults))]
		}
		hold := time.Duration(1500+rng.IntN(3000)) * time.Millisecond
		var o clusterOpts
		if rng.IntN(2) == 0 {
			o = snapshotOften
		}
		runSeed := rng.Uint64()
		t.Run(fmt.Sprintf("run%03d", runs), func(t *testing.T) {
			t.Logf("seed %d, hold %v, faults %v, member flags %q", runSeed, hold, faults, o.extra)
			f := runFaults(t, faults, runSeed, hold, o)
			total.ops += f.ops
			total.snapInstalls += f.snapInstalls
			total.unknown += f.unknown
			total.failed += f.failed
			total.violations = append(total.violations, f.violations...)
			total.locks = addLockFigures(total.locks, f.locks)
			total.recoveryMax = max(total.recoveryMax, f.recoveryMax)
			for k, n := range f.faults {
				total.faults[k] += n
			}
		})
		runs++
	}
	logFigures(t, runs, total)
}
