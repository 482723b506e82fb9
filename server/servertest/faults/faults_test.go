package faults

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/server/servertest/lincheck"
)

// watchHistory is the members' watch history in this suite: small, so that
// a watcher of lincheck.StartWatchRun that pauses falls out of it and gets a
// resync.
const watchHistory = 100

// vanishTimeoutMs is the timeout abandoned sessions ask for (the cluster's
// minimum in this suite).
const vanishTimeoutMs = 1000

// figures of one seed's run.
type figures struct {
	seed      int64
	members   int
	ops       int
	unknown   int
	checked   int // operations porcupine checked
	redials   int
	abandoned int // sessions dropped without a close
	probes    int // resumes of them
	sightings int // reads of their ephemerals
	// the watch workload: acknowledged writes, events received, resyncs
	watchAcked, watchEvents, watchResyncs int
	locks                                 lincheck.LockFigures
	faults                                map[string]int
	violations                            []string
}

// TestFaults runs the fault suite over the seeds of the environment (see
// main_test.go): by default 4 seeds of 5 s each.
func TestFaults(t *testing.T) {
	seeds, d := suiteSeeds(t), suiteDuration(t)
	var all []figures
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			f := runSeed(t, seed, d)
			all = append(all, f)
			for _, v := range f.violations {
				t.Errorf("seed %d: %s", seed, v)
			}
			if len(f.violations) > 0 {
				t.Logf("replay with: %s=%d %s=%v go test ./server/servertest/faults -run TestFaults -v", envSeed, seed, envDuration, d)
			}
		})
	}
	report(t, all, d)
}

func report(t *testing.T, all []figures, d time.Duration) {
	var ops, unknown, checked, redials, violations, abandoned, probes, sightings, wAcked, wEvents, wResyncs int
	var locks lincheck.LockFigures
	faults := map[string]int{}
	for _, f := range all {
		ops += f.ops
		unknown += f.unknown
		checked += f.checked
		redials += f.redials
		abandoned, probes, sightings = abandoned+f.abandoned, probes+f.probes, sightings+f.sightings
		wAcked, wEvents, wResyncs = wAcked+f.watchAcked, wEvents+f.watchEvents, wResyncs+f.watchResyncs
		locks = addLockFigures(locks, f.locks)
		violations += len(f.violations)
		for k, v := range f.faults {
			faults[k] += v
		}
	}
	kinds := make([]string, 0, len(faults))
	for k, v := range faults {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(kinds)
	t.Logf("FIGURES runs=%d duration/run=%v operations=%d (unknown outcome %d, linearizability-checked %d) redials=%d abandoned-sessions=%d resume-probes=%d sightings=%d watch-writes=%d watch-events=%d resyncs=%d lock-grants=%d lost-while-held=%d handovers-after-loss=%d paused-holders=%d fenced-writes=%d stale-writes-refused=%d faults: %s violations=%d",
		len(all), d, ops, unknown, checked, redials, abandoned, probes, sightings, wAcked, wEvents, wResyncs,
		locks.Grants, locks.Lost, locks.Handovers, locks.Paused, locks.Accepted, locks.StaleRefused, strings.Join(kinds, " "), violations)
}

// runSeed runs one seed: cluster, nemesis and workers for d, then heals and
// checks everything.
func runSeed(t *testing.T, seed int64, d time.Duration) figures {
	rng := rand.New(rand.NewSource(seed))
	n := 3 + 2*rng.Intn(2) // 3 or 5 members
	workers := 4 + rng.Intn(3)
	eps := schedule(rng, n, d)
	workerSeeds := make([]int64, workers)
	for i := range workerSeeds {
		workerSeeds[i] = rng.Int63()
	}
	f := figures{seed: seed, members: n}

	c := newCluster(t, n, seed)
	defer c.stopAll()
	start := setup(t, c)

	rec := lincheck.NewRecorder()
	ab := &lincheck.Abandoner{Addrs: c.addrs(), Parent: ephParent, TimeoutMs: vanishTimeoutMs,
		OpTimeout: opTimeout, Log: lincheck.NewSessionLog()}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	watchSeed := rng.Int63()
	lockSeed := rng.Int63()
	nem := newNemesis(c)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); nem.run(ctx, eps) }()
	wr := lincheck.StartWatchRun(ctx, c.addrs(), start, watchSeed, opTimeout)
	lr := lincheck.StartLockRun(ctx, lockConfig(c.addrs(), lockSeed))
	ws := make([]*worker, workers)
	for i := range ws {
		ws[i] = newWorker(i, workerSeeds[i], c.addrs(), rec, ab)
		wg.Add(1)
		go func() { defer wg.Done(); ws[i].run(ctx) }()
	}
	wg.Wait() // the nemesis has healed and restarted every member
	for _, w := range ws {
		f.redials += w.redials
	}
	f.faults, _ = nem.summary()

	for i := range c.size() {
		c.waitReady(i, 30*time.Second)
	}
	h := rec.History()
	st := lincheck.Count(h)
	f.ops, f.unknown = st.Ops, st.Unknown
	f.violations = check(t, c, h, ab, wr, lr, &f)
	if len(f.violations) > 0 {
		_, log := nem.summary()
		t.Logf("seed %d: %d members, %d workers; nemesis:\n%s", seed, n, workers, log)
	}
	return f
}

// setup creates the parent of the ephemerals and the watched subtree, and
// returns the zxid at which the subtree is watchInitial().
func setup(t *testing.T, c *cluster) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, client.Config{Endpoints: c.addrs(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close(ctx)
	if _, _, err := cl.Create(ctx, ephParent, nil); err != nil {
		t.Fatal(err)
	}
	start, err := lincheck.SetUpWatchTree(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return start
}

// check runs every checker on the healed cluster and returns the violations.
func check(t *testing.T, c *cluster, h []lincheck.Op, ab *lincheck.Abandoner, wr *lincheck.WatchRun, lr *lincheck.LockRun, f *figures) []string {
	var out []string
	add := func(errs ...error) {
		for _, e := range errs {
			out = append(out, e.Error())
		}
	}
	res := lincheck.CheckLinearizable(h, time.Minute)
	f.checked = res.Ops
	switch res.Result {
	case porcupine.Illegal:
		msg := fmt.Sprintf("history is not linearizable (%d operations)", res.Ops)
		if p, err := lincheck.SaveVisualization(res, os.TempDir(), fmt.Sprintf("arbor-faults-seed%d", f.seed)); err == nil {
			msg += "; visualization: " + p
		}
		if p, err := lincheck.SaveHistory(h, os.TempDir(), fmt.Sprintf("arbor-faults-seed%d", f.seed)); err == nil {
			msg += "; history: " + p
		}
		out = append(out, msg)
	case porcupine.Unknown:
		t.Logf("seed %d: linearizability check timed out; not counted", f.seed)
	}
	add(lincheck.CheckLocalReadsMonotonic(h)...)
	add(lincheck.CheckEphemerals(h)...)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, client.Config{Endpoints: c.addrs(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		add(fmt.Errorf("dial after healing: %w", err))
	} else {
		errs, err := lincheck.LeftoverEphemerals(ctx, cl, h, ephParent)
		add(errs...)
		if err != nil {
			add(err)
		}
		_ = cl.Close(ctx)
	}
	add(wr.Check(ctx)...)
	f.watchAcked, f.watchEvents, f.watchResyncs = wr.Log.Counts()
	// No client is ever paused here (the lock workload's own paused holders
	// are accounted for): mutual exclusion is checked in every run.
	add(lr.Check(ctx, 20*time.Second, true)...)
	f.locks = lr.Log.Figures()
	add(ab.CheckGone(ctx, 10*time.Second)...)
	add(lincheck.CheckExpiry(ab.Log)...)
	f.abandoned, f.probes, f.sightings = ab.Log.Len()
	if err := lincheck.CheckStateHashes(ctx, c.addrs()); err != nil {
		add(err)
	}
	c.stopAll()
	for _, m := range c.members {
		if err := raftnode.CheckDataDir(m.dataDir); err != nil {
			add(fmt.Errorf("member %s: %w", m.name, err))
		}
	}
	return out
}
