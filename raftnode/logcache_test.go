package raftnode_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/raftnode/rafttest"
)

// A log of 12.8 MB (200 entries of 64 KiB) with a 1 MiB log cache: the
// members restart and replay all of it from raft.db, the leader then
// serves a follower that missed all of it from raft.db, and no member ever
// holds more than 1 MiB of entries in memory.
func TestSmallLogCacheReplaysAndServesFromDisk(t *testing.T) {
	const limit = 1 << 20
	c := rafttest.NewCluster(t, 3, rafttest.Options{MaxLogCacheBytes: limit, NoSync: true})
	l := c.WaitLeader(5*time.Second, -1)
	f := (l + 1) % 3
	o := (l + 2) % 3
	if err := c.Crash(f); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 60*time.Second)
	pad := strings.Repeat("x", 64<<10)
	for i := range 200 {
		if err := c.ProposeKV(ctx, fmt.Sprintf("big-%03d-%s", i, pad)); err != nil {
			t.Fatal(err)
		}
	}
	checkSame(t, c, l, o)
	applied := c.KV(l).Applied()
	want := c.KV(l).Hash(applied)
	checkPeak := func(i int) {
		t.Helper()
		n := c.Node(i)
		if p, st := raftnode.LogCachePeak(n), n.Status(); p > limit || st.LogCacheBytes > limit {
			t.Fatalf("member %d held %d bytes of log (now %d), limit %d", i, p, st.LogCacheBytes, limit)
		}
	}
	checkPeak(l)
	checkPeak(o)

	// Restart both: each replays the 200 entries from raft.db.
	c.Crash(l)
	c.Crash(o)
	c.Restart(l)
	c.Restart(o)
	if err := c.WaitApplied(20*time.Second, applied, l, o); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{l, o} {
		if h := c.KV(i).Hash(applied); h != want {
			t.Fatalf("member %d replayed a different sequence", i)
		}
		if raftnode.LogDiskReads(c.Node(i)) == 0 {
			t.Fatalf("member %d replayed without reading raft.db", i)
		}
		checkPeak(i)
	}

	// The follower that missed everything catches up by appends, which
	// the leader reads from raft.db (its log was never compacted).
	nl := c.WaitLeader(10*time.Second, -1)
	readsBefore := raftnode.LogDiskReads(c.Node(nl))
	c.Restart(f)
	restores := c.KV(f).Restores()
	if err := c.WaitApplied(20*time.Second, applied, f); err != nil {
		t.Fatal(err)
	}
	if h := c.KV(f).Hash(applied); h != want {
		t.Fatal("the lagging follower applied a different sequence")
	}
	if c.KV(f).Restores() != restores {
		t.Fatal("the lagging follower caught up by a snapshot, not from the log")
	}
	if raftnode.LogDiskReads(c.Node(nl)) == readsBefore {
		t.Fatal("the leader served the follower without reading raft.db")
	}
	for i := range 3 {
		checkPeak(i)
	}
	proposeN(t, c, "after", 5)
	checkSame(t, c, 0, 1, 2)
}
