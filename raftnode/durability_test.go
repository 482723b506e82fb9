package raftnode_test

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/raftnode/rafttest"
)

func snapFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "snap", "*.snap"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m) // names are zero-padded hex term-index
	return m
}

func TestCorruptSnapshotFallsBackOrFailsClearly(t *testing.T) {
	// Small log segments, so that compaction (of whole segments) drops the
	// oldest entries.
	c := rafttest.NewCluster(t, 1, rafttest.Options{SnapshotEntries: 10, CompactKeepEntries: 10, LogSegmentBytes: 512})
	c.WaitLeader(5*time.Second, -1)
	proposeN(t, c, "a", 35)
	want := c.KV(0).Records()
	if err := c.Crash(0); err != nil {
		t.Fatal(err)
	}
	dir := c.Member(0).Dir
	files := snapFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("kept snapshot files: %v", files)
	}
	// Tear the newest snapshot: the member falls back to the previous one,
	// which the retained log still covers, and replays to the same state.
	newest := files[len(files)-1]
	st, _ := os.Stat(newest)
	if err := os.Truncate(newest, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	c.Restart(0)
	c.WaitLeader(5*time.Second, -1)
	if err := c.WaitApplied(5*time.Second, want[len(want)-1].Index, 0); err != nil {
		t.Fatal(err)
	}
	if got := c.KV(0).Records(); len(got) < len(want) || got[len(want)-1] != want[len(want)-1] {
		t.Fatalf("after fallback: %v", got)
	}
	if c.KV(0).Restores() != 1 {
		t.Fatal("did not restore from the older snapshot")
	}
	c.Crash(0)

	// Corrupt every snapshot: the log no longer reaches back, so New
	// refuses to start instead of serving a state with a hole.
	for _, f := range snapFiles(t, dir) {
		b, _ := os.ReadFile(f)
		b[len(b)/2] ^= 0xff
		os.WriteFile(f, b, 0o600)
	}
	_, err := raftnode.New(raftnode.Config{Name: "n0", DataDir: dir}, rafttest.NewKV())
	if !errors.Is(err, raftnode.ErrNoSnapshot) {
		t.Fatalf("New with only corrupt snapshots: %v", err)
	}
}

func TestWritesResumeWithin3sAfterLeaderKill(t *testing.T) {
	// Production timing: 100ms ticks, 10-tick election timeout.
	c := rafttest.NewCluster(t, 3, rafttest.Options{TickInterval: 100 * time.Millisecond})
	old := c.WaitLeader(10*time.Second, -1)
	proposeN(t, c, "a", 3)
	c.Crash(old)
	start := time.Now()
	ctx := ctxT(t, 10*time.Second)
	if err := c.ProposeKV(ctx, "after-kill"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("first write after killing the leader took %v", d)
	} else {
		t.Logf("write resumed after %v", d)
	}
}

// A crash mid-write leaves a snapshot temp file behind; the next start
// removes it and keeps the real snapshots.
func TestTempSnapshotFilesRemovedAtStart(t *testing.T) {
	c := rafttest.NewCluster(t, 1, rafttest.Options{SnapshotEntries: 10, CompactKeepEntries: 10})
	c.WaitLeader(5*time.Second, -1)
	proposeN(t, c, "a", 25)
	if err := c.Crash(0); err != nil {
		t.Fatal(err)
	}
	dir := c.Member(0).Dir
	kept := snapFiles(t, dir)
	if len(kept) == 0 {
		t.Fatal("no snapshot taken")
	}
	// Named as the writer names its temp files (os.CreateTemp "tmp-*.part").
	tmp := filepath.Join(dir, "snap", "tmp-1234567890.part")
	if err := os.WriteFile(tmp, []byte("half a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Restart(0)
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp file after start: %v", err)
	}
	for _, f := range kept {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("snapshot %s after start: %v", filepath.Base(f), err)
		}
	}
}
