package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/server/servertest/lincheck"
)

// run is a workload recording against a cluster.
type run struct {
	c     *cluster
	rec   *lincheck.Recorder
	w     *workload
	watch *lincheck.WatchRun
	lock  *lincheck.LockRun
	stop  func()
}

func startRun(t *testing.T, ctx context.Context, c *cluster, seed uint64) *run {
	t.Helper()
	rec := lincheck.NewRecorder()
	cl, err := client.Dial(ctx, client.Config{Endpoints: c.clientAddrs(), Logger: quietLogger})
	if err != nil {
		t.Fatalf("dial to set up the watched subtree: %v", err)
	}
	start, err := lincheck.SetUpWatchTree(ctx, cl)
	_ = cl.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	watch := lincheck.StartWatchRun(wctx, c.clientAddrs(), start, int64(seed), opTimeout)
	lock := lincheck.StartLockRun(wctx, lockConfig(c.clientAddrs(), int64(seed)))
	w, stop := startWorkload(ctx, c, rec, 2, seed)
	return &run{c: c, rec: rec, w: w, watch: watch, lock: lock, stop: func() { stop(); stopWatch() }}
}

// finish stops the workload, brings every member back, and checks the
// history, the members' states and their data dirs, adding what it found
// to fig and failing t on any violation.
func (r *run) finish(t *testing.T, fig *runFigures) {
	t.Helper()
	c := r.c
	r.stop()
	c.heal()
	for i, m := range c.Members {
		switch {
		case !m.Running():
			c.start(i)
		case m.Paused():
			c.resume(i)
		}
	}
	c.waitHealthy(30 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, m := range c.Members {
		fig.snapInstalls += strings.Count(m.Log(), "installed snapshot from leader")
	}

	h := r.rec.History()
	st := lincheck.Count(h)
	fig.ops, fig.unknown, fig.failed = st.Ops, st.Unknown, st.Failed
	t.Logf("history: %d operations (%d unknown outcome, %d failed), by kind %v, %d redials",
		st.Ops, st.Unknown, st.Failed, st.ByKind, r.w.redials.Load())
	violation := func(err error) {
		t.Error(err)
		fig.violations = append(fig.violations, err)
	}

	hctx, hcancel := context.WithTimeout(ctx, 30*time.Second)
	if err := lincheck.CheckStateHashes(hctx, c.clientAddrs()); err != nil {
		violation(err)
	}
	hcancel()

	cl, err := client.Dial(ctx, client.Config{Endpoints: c.clientAddrs(), Logger: quietLogger})
	if err != nil {
		t.Fatalf("dial for the final checks: %v", err)
	}
	left, err := lincheck.LeftoverEphemerals(ctx, cl, h, ephParent)
	if err != nil {
		t.Errorf("listing ephemerals: %v", err)
	}
	for _, e := range left {
		violation(e)
	}

	start := time.Now()
	res := lincheck.CheckLinearizable(h, 2*time.Minute)
	t.Logf("linearizability: %d operations checked in %v: %v", res.Ops, time.Since(start).Round(time.Millisecond), res.Result)
	switch res.Result {
	case porcupine.Illegal:
		path, verr := lincheck.SaveVisualization(res, os.TempDir(), fmt.Sprintf("arbor-faults-%s-%d", t.Name(), time.Now().Unix()))
		violation(fmt.Errorf("%w: history not linearizable (visualization %s %v)", lincheck.ErrViolation, path, verr))
	case porcupine.Unknown:
		t.Errorf("linearizability check timed out on %d operations", res.Ops)
	}
	for _, e := range lincheck.CheckLocalReadsMonotonic(h) {
		violation(e)
	}
	for _, e := range lincheck.CheckEphemerals(h) {
		violation(e)
	}
	for _, e := range r.watch.Check(ctx) {
		violation(e)
	}
	acked, events, resyncs := r.watch.Log.Counts()
	t.Logf("watches: %d acknowledged writes under %s, %d events to the watchers, %d resyncs; %d views of the tree cache checked",
		acked, lincheck.WatchRoot, events, resyncs, r.watch.Log.CacheViews())
	// SIGSTOP pauses members, never the clients (all in this process):
	// every holder can learn in time that it lost its lock, so mutual
	// exclusion is checked too.
	for _, e := range r.lock.Check(ctx, 30*time.Second, true) {
		violation(e)
	}
	lf := r.lock.Log.Figures()
	fig.locks = addLockFigures(fig.locks, lf)
	t.Logf("locks: %d grants (%d released), %d lost while held, %d granted on after a loss, %d holders paused; fenced writes: %d accepted, %d stale refused",
		lf.Grants, lf.Released, lf.Lost, lf.Handovers, lf.Paused, lf.Accepted, lf.StaleRefused)
	for _, e := range r.w.ab.CheckGone(ctx, 15*time.Second) {
		violation(e)
	}
	for _, e := range lincheck.CheckExpiry(r.w.ab.Log) {
		violation(e)
	}
	ab, probes, sightings := r.w.ab.Log.Len()
	t.Logf("abandoned sessions: %d, resume probes %d, sightings %d", ab, probes, sightings)

	// What the cluster holds now must survive a clean stop and restart of
	// every member, and their data dirs must check clean in between.
	before, err := readKeys(ctx, cl)
	cl.Close(ctx)
	if err != nil {
		t.Fatalf("reading the registers back: %v", err)
	}
	for i, m := range c.Members {
		if err := c.stop(i, 15*time.Second); err != nil {
			violation(fmt.Errorf("%w: %s did not stop cleanly on SIGTERM: %v", lincheck.ErrViolation, m.Name, err))
		}
	}
	for _, m := range c.Members {
		if err := checkDataDir(m.DataDir); err != nil {
			violation(fmt.Errorf("%w: data dir of %s: %v", lincheck.ErrViolation, m.Name, err))
		}
	}
	for i := range c.Members {
		c.start(i)
	}
	c.waitHealthy(30 * time.Second)
	cl, err = client.Dial(ctx, client.Config{Endpoints: c.clientAddrs(), Logger: quietLogger})
	if err != nil {
		t.Fatalf("dial after the restart: %v", err)
	}
	defer cl.Close(ctx)
	after, err := readKeys(ctx, cl)
	if err != nil {
		t.Fatalf("reading the registers after the restart: %v", err)
	}
	for k, v := range before {
		if after[k] != v {
			violation(fmt.Errorf("%w: %s was %s before a clean restart of every member, %s after", lincheck.ErrViolation, k, v, after[k]))
		}
	}
	hctx, hcancel = context.WithTimeout(ctx, 30*time.Second)
	defer hcancel()
	if err := lincheck.CheckStateHashes(hctx, c.clientAddrs()); err != nil {
		violation(fmt.Errorf("after the restart: %w", err))
	}
}

// readKeys reads every register linearizably: "absent" or data@version.
func readKeys(ctx context.Context, cl *client.Client) (map[string]string, error) {
	out := map[string]string{}
	for i := range numKeys {
		p := keyPath(i)
		data, st, err := cl.Get(ctx, p)
		switch {
		case errors.Is(err, client.ErrNoNode):
			out[p] = "absent"
		case err != nil:
			return nil, fmt.Errorf("get %s: %w", p, err)
		default:
			out[p] = fmt.Sprintf("%q@v%d", data, st.Version)
		}
	}
	return out, nil
}

// checkDataDir checks a stopped member's data dir with raftnode's
// read-only checker: bbolt's consistency check, the log against the
// snapshot, and every snapshot file's checksum.
func checkDataDir(dir string) error { return raftnode.CheckDataDir(dir) }
