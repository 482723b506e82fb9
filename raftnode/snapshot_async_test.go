package raftnode_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/raftnode/rafttest"
)

// gate holds every snapshot write of an index from `from` on at its start
// until opened; started gets the index of each write it holds.
type gate struct {
	from    uint64
	open    chan struct{}
	once    sync.Once
	started chan uint64
}

func newGate(from uint64) *gate {
	return &gate{from: from, open: make(chan struct{}), started: make(chan uint64, 64)}
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) wait(index uint64, _ io.Writer) error {
	if index < g.from {
		return nil
	}
	select {
	case g.started <- index:
	default:
	}
	select {
	case <-g.open:
		return nil
	case <-time.After(time.Minute): // the test failed without releasing
		return errors.New("gate never opened")
	}
}

func viewKVCluster(t *testing.T, n int, opts rafttest.Options, before func(uint64, io.Writer) error) *rafttest.Cluster {
	opts.NewStateMachine = func(string) raftnode.StateMachine {
		v := rafttest.NewViewKV()
		v.BeforeWrite = before
		return v
	}
	return rafttest.NewCluster(t, n, opts)
}

// A snapshot whose file takes many election timeouts to write does not
// cost the leader its term: ticks, heartbeats and applies go on meanwhile
// on every member, and the file, once written, holds the state as of its
// index although entries were applied after it.
func TestSlowSnapshotViewKeepsLeaderAndApplies(t *testing.T) {
	// The bootstrap forces a snapshot at once; the one held is the
	// SnapshotEntries one.
	g := newGate(30)
	const tick, electionTicks = 20 * time.Millisecond, 10
	c := viewKVCluster(t, 3, rafttest.Options{SnapshotEntries: 30, TickInterval: tick, ElectionTicks: electionTicks, NoSync: true}, g.wait)
	t.Cleanup(g.release) // runs before the cluster's cleanup stops the members
	l := c.WaitLeader(5*time.Second, -1)
	// Members snapshot at staggered indexes (every 30, shifted by 0, 10
	// and 20): by 60 each has started one at or after 30.
	proposeN(t, c, "a", 60)
	for range 3 {
		select {
		case <-g.started:
		case <-time.After(10 * time.Second):
			t.Fatal("snapshot writes did not start on every member")
		}
	}
	before := make([]raftnode.Status, 3)
	for i := range before {
		before[i] = c.Node(i).Status()
	}
	// Five times the longest election timeout, with every snapshot write
	// held at its start.
	window := 5 * 2 * electionTicks * tick
	ctx := ctxT(t, 30*time.Second)
	start, proposed := time.Now(), 0
	for time.Since(start) < window {
		if err := c.ProposeKV(ctx, fmt.Sprintf("b-%d", proposed)); err != nil {
			t.Fatal(err)
		}
		proposed++
		for i := range 3 {
			st := c.Node(i).Status()
			if st.Term != before[i].Term || st.Leader != before[l].ID || st.LeaderChanges != before[i].LeaderChanges {
				t.Fatalf("member %d during the snapshot write: %+v, before %+v", i, st, before[i])
			}
			if st.SnapshotIndex != before[i].SnapshotIndex {
				t.Fatalf("member %d finished its snapshot while held: %+v", i, st)
			}
		}
	}
	t.Logf("%d proposals applied in %v while the snapshot writes were held", proposed, window)
	checkSame(t, c, 0, 1, 2)
	g.release()
	deadline := time.Now().Add(10 * time.Second)
	for i := range 3 {
		for c.Node(i).Status().SnapshotIndex < g.from {
			if time.Now().After(deadline) {
				t.Fatalf("member %d did not finish its snapshot: %+v", i, c.Node(i).Status())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if st := c.Node(i).Status(); st.Term != before[i].Term || st.LeaderChanges != before[i].LeaderChanges {
			t.Fatalf("member %d after the snapshot: %+v, before %+v", i, st, before[i])
		}
	}
	// The file restores to the state as of its own index.
	f := (l + 1) % 3
	want := c.KV(f).Records()
	if err := c.Crash(f); err != nil {
		t.Fatal(err)
	}
	c.Restart(f)
	if c.KV(f).Restores() != 1 {
		t.Fatal("restart did not restore the snapshot")
	}
	if err := c.WaitApplied(10*time.Second, want[len(want)-1].Index, f); err != nil {
		t.Fatal(err)
	}
	if got := c.KV(f).Records(); fmt.Sprint(got[:len(want)]) != fmt.Sprint(want) {
		t.Fatalf("after restoring the snapshot:\n%v\nwant\n%v", got, want)
	}
	proposeN(t, c, "c", 5)
	checkSame(t, c, 0, 1, 2)
}

// Snapshots written off the raft goroutine compact the log like inline
// ones: a follower that fell behind the compaction catches up by one.
func TestViewSnapshotsFollowerCatchesUp(t *testing.T) {
	c := viewKVCluster(t, 3, rafttest.Options{SnapshotEntries: 20, CompactKeepEntries: 10, NoSync: true}, nil)
	l := c.WaitLeader(5*time.Second, -1)
	f := (l + 1) % 3
	proposeN(t, c, "a", 5)
	c.Crash(f)
	proposeN(t, c, "b", 100)
	c.Restart(f)
	checkSame(t, c, 0, 1, 2)
	hasAll(t, c.KV(f), "b", 100)
	if c.KV(f).Restores() == 0 {
		t.Fatal("follower caught up without installing a snapshot")
	}
	proposeN(t, c, "c", 10)
	checkSame(t, c, 0, 1, 2)
}

func partFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "snap", "*.part"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Stopping Run while a view is being written fails the write, removes its
// temp file and waits for it; the next start replays the log instead.
func TestStopDuringSnapshotWriteCleansUp(t *testing.T) {
	started := make(chan struct{}, 1)
	slow := func(_ uint64, w io.Writer) error {
		chunk := make([]byte, 1024)
		for {
			// Writes fail once Run stops: that ends the loop.
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			select {
			case started <- struct{}{}:
			default:
			}
			time.Sleep(time.Millisecond) // a slow serialization, not synchronisation
		}
	}
	c := viewKVCluster(t, 1, rafttest.Options{SnapshotEntries: 10}, slow)
	c.WaitLeader(5*time.Second, -1)
	proposeN(t, c, "a", 12)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("snapshot write did not start")
	}
	want := c.KV(0).Records()
	stopped := make(chan error, 1)
	go func() { stopped <- c.Crash(0) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop while a snapshot was being written")
	}
	dir := c.Member(0).Dir
	if p := partFiles(t, dir); len(p) > 0 {
		t.Fatalf("temp files left: %v", p)
	}
	if s := snapFiles(t, dir); len(s) > 0 {
		t.Fatalf("an abandoned snapshot became a file: %v", s)
	}
	c.Restart(0)
	c.WaitLeader(5*time.Second, -1)
	if err := c.WaitApplied(5*time.Second, want[len(want)-1].Index, 0); err != nil {
		t.Fatal(err)
	}
	if got := c.KV(0).Records(); fmt.Sprint(got[:len(want)]) != fmt.Sprint(want) {
		t.Fatalf("after restart: %v", got)
	}
}

// An error of a view's WriteTo ends Run with it, as an inline Snapshot
// error does, and leaves no temp file. (The first snapshot is due at once:
// the bootstrap adds a member, which forces one.)
func TestSnapshotViewWriteErrorStopsRun(t *testing.T) {
	injected := errors.New("injected view failure")
	c := viewKVCluster(t, 1, rafttest.Options{SnapshotEntries: 10}, func(uint64, io.Writer) error { return injected })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; c.Running(0) && ctx.Err() == nil; i++ {
		_ = c.Node(0).Propose(ctx, fmt.Appendf(nil, "a-%d", i))
	}
	exited, runErr := c.Exited(0)
	select {
	case <-exited:
	case <-ctx.Done():
		t.Fatal("Run kept going after the snapshot write failed")
	}
	if err := runErr(); !errors.Is(err, injected) {
		t.Fatalf("Run = %v, want the view's error", err)
	}
	if p := partFiles(t, c.Member(0).Dir); len(p) > 0 {
		t.Fatalf("temp files left: %v", p)
	}
	if _, err := os.Stat(filepath.Join(c.Member(0).Dir, "raft.db")); err != nil {
		t.Fatal(err)
	}
}
