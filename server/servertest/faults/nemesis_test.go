package faults

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"time"
)

// Fault kinds the nemesis injects.
const (
	faultPartition     = "partition"      // symmetric: a minority cut off from the rest
	faultOneWay        = "one-way"        // messages from one member to another dropped
	faultIsolateLeader = "isolate-leader" // the current leader cut off both ways
	faultFlaky         = "flaky-network"  // drop, duplicate, delay and reorder
	faultCrash         = "crash"          // a random member stops and restarts on its data dir
	faultCrashLeader   = "crash-leader"   // the current leader stops and restarts
	// lag-follower: the leader's log appends to one follower dropped, its
	// heartbeats not: the follower keeps its leader and its clients but
	// falls behind, past the compacted log when the hold is long enough,
	// and then installs a snapshot once healed (drawn from the one-way
	// blocks, see schedule).
	faultLagFollower = "lag-follower"
	// power-loss: every member stops at once and loses what it wrote to
	// its log but had not fdatasync'd, as a power cut of the whole
	// cluster would; they restart on what is left.
	faultPowerLoss = "power-loss"
)

var faultKinds = []string{faultPartition, faultOneWay, faultIsolateLeader, faultFlaky, faultCrash, faultCrashLeader, faultPowerLoss}

// episode is one fault of the schedule: at start (from the run's start) it
// begins, after hold it is undone. The random parameters are drawn when the
// schedule is made, so one seed gives one schedule.
type episode struct {
	start, hold time.Duration
	kind        string
	a, b        int     // members: the victim(s)
	side        []int   // partition: the minority
	drop, dup   float64 // flaky-network
	delay       time.Duration
}

func (e episode) String() string {
	s := fmt.Sprintf("%6.2fs +%4dms %s", e.start.Seconds(), e.hold.Milliseconds(), e.kind)
	switch e.kind {
	case faultPartition:
		s += fmt.Sprint(" minority=", e.side)
	case faultOneWay:
		s += fmt.Sprintf(" %d->%d", e.a, e.b)
	case faultCrash:
		s += fmt.Sprint(" member=", e.a)
	case faultFlaky:
		s += fmt.Sprintf(" drop=%.2f dup=%.2f delay<%v", e.drop, e.dup, e.delay)
	}
	return s
}

// schedule draws the episodes of one run: one fault at a time, back to
// back with short quiet gaps, until d.
func schedule(rng *rand.Rand, n int, d time.Duration) []episode {
	var out []episode
	at := 300 * time.Millisecond
	for at < d {
		e := episode{
			start: at,
			hold:  time.Duration(200+rng.Intn(1300)) * time.Millisecond,
			kind:  faultKinds[rng.Intn(len(faultKinds))],
			a:     rng.Intn(n),
			b:     rng.Intn(n),
		}
		if e.b == e.a {
			e.b = (e.a + 1) % n
		}
		perm := rng.Perm(n)
		e.side = perm[:1+rng.Intn((n-1)/2)]
		sort.Ints(e.side)
		e.drop = 0.05 + 0.25*rng.Float64()
		e.dup = 0.2 * rng.Float64()
		e.delay = time.Duration(1+rng.Intn(40)) * time.Millisecond
		if e.kind == faultOneWay && e.drop > 0.175 {
			// About half the one-way blocks lag a follower instead, decided
			// from a draw every episode makes anyway, so that the schedules
			// of the other kinds (and every seed's power cuts) stay as they
			// were before this kind existed.
			e.kind = faultLagFollower
		}
		out = append(out, e)
		at += e.hold + time.Duration(100+rng.Intn(400))*time.Millisecond
	}
	return out
}

// nemesis plays a schedule against a cluster.
type nemesis struct {
	c *cluster

	mu       sync.Mutex
	injected map[string]int
	log      []string
}

func newNemesis(c *cluster) *nemesis { return &nemesis{c: c, injected: map[string]int{}} }

// run plays eps until ctx ends, then heals everything and restarts crashed
// members.
func (n *nemesis) run(ctx context.Context, eps []episode) {
	start := time.Now()
	defer n.healAll()
	for _, e := range eps {
		if !sleepUntil(ctx, start.Add(e.start)) {
			return
		}
		undo := n.inject(e)
		ok := sleepUntil(ctx, time.Now().Add(e.hold))
		undo()
		if !ok {
			return
		}
	}
	<-ctx.Done()
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

func (n *nemesis) note(kind, what string) {
	n.mu.Lock()
	n.injected[kind]++
	n.log = append(n.log, what)
	n.mu.Unlock()
}

// inject starts e and returns its undo.
func (n *nemesis) inject(e episode) func() {
	c, nw := n.c, n.c.net
	ids := func(idx []int) []uint64 {
		out := make([]uint64, len(idx))
		for i, x := range idx {
			out[i] = c.members[x].id
		}
		return out
	}
	cut := func(side []int) {
		in := map[int]bool{}
		for _, x := range side {
			in[x] = true
		}
		for i := range c.members {
			for j := range c.members {
				if in[i] != in[j] {
					nw.Block(c.members[i].id, c.members[j].id)
				}
			}
		}
	}
	switch e.kind {
	case faultPartition:
		cut(e.side)
		n.note(e.kind, fmt.Sprint(e, " ids=", ids(e.side)))
		return nw.Heal
	case faultOneWay:
		nw.Block(c.members[e.a].id, c.members[e.b].id)
		n.note(e.kind, e.String())
		return nw.Heal
	case faultIsolateLeader:
		l := c.leader()
		if l < 0 {
			return func() {}
		}
		cut([]int{l})
		n.note(e.kind, fmt.Sprintf("%s member=%d", e, l))
		return nw.Heal
	case faultLagFollower:
		l := c.leader()
		if l < 0 {
			return func() {}
		}
		f := e.a
		if f == l {
			f = e.b
		}
		nw.Starve(c.members[l].id, c.members[f].id)
		n.note(e.kind, fmt.Sprintf("%s leader=%d follower=%d", e, l, f))
		return nw.Heal
	case faultFlaky:
		nw.SetFaults(e.drop, e.dup, e.delay)
		n.note(e.kind, e.String())
		return func() { nw.SetFaults(0, 0, 0) }
	case faultCrash, faultCrashLeader:
		victim := e.a
		if e.kind == faultCrashLeader {
			if victim = c.leader(); victim < 0 {
				return func() {}
			}
		}
		if !c.up(victim) {
			return func() {}
		}
		c.crash(victim)
		n.note(e.kind, fmt.Sprintf("%s member=%d", e, victim))
		return func() { c.restart(victim) }
	case faultPowerLoss:
		lost := c.powerLoss()
		n.note(e.kind, fmt.Sprintf("%s unsynced bytes lost=%v", e, lost))
		return func() {
			for i := range c.members {
				c.restart(i)
			}
		}
	}
	return func() {}
}

func (n *nemesis) healAll() {
	n.c.net.Heal()
	n.c.net.SetFaults(0, 0, 0)
	for i := range n.c.members {
		n.c.restart(i)
	}
}

func (n *nemesis) summary() (map[string]int, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]int, len(n.injected))
	for k, v := range n.injected {
		out[k] = v
	}
	return out, strings.Join(n.log, "\n")
}
