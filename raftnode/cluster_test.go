package raftnode_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/raftnode/rafttest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func proposeN(t *testing.T, c *rafttest.Cluster, prefix string, n int) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	for i := range n {
		if err := c.ProposeKV(ctx, fmt.Sprintf("%s-%d", prefix, i)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkSame waits until the listed members applied the same index and
// checks that they applied identical command sequences.
func checkSame(t *testing.T, c *rafttest.Cluster, members ...int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		target := c.KV(members[0]).Applied()
		for _, i := range members {
			target = max(target, c.KV(i).Applied())
		}
		same := true
		for _, i := range members {
			if c.KV(i).Applied() != target {
				same = false
			}
		}
		if same {
			want := c.KV(members[0]).Hash(target)
			for _, i := range members {
				kv := c.KV(i)
				if errs := kv.Errors(); len(errs) > 0 {
					t.Fatalf("member %d apply order violations: %v", i, errs)
				}
				if h := kv.Hash(target); h != want {
					t.Fatalf("member %d applied a different sequence up to %d:\n%v\nvs\n%v", i, target, kv.Records(), c.KV(members[0]).Records())
				}
			}
			return
		}
		if time.Now().After(deadline) {
			for _, i := range members {
				t.Logf("member %d applied %d", i, c.KV(i).Applied())
			}
			t.Fatal("members did not converge")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hasAll(t *testing.T, kv *rafttest.KV, prefix string, n int) {
	t.Helper()
	for i := range n {
		if cmd := fmt.Sprintf("%s-%d", prefix, i); !kv.Has(cmd) {
			t.Fatalf("%s missing", cmd)
		}
	}
}

func TestSingleNodeProposeApply(t *testing.T) {
	c := rafttest.NewCluster(t, 1, rafttest.Options{})
	c.WaitLeader(5*time.Second, -1)
	proposeN(t, c, "a", 20)
	recs := c.KV(0).Records()
	if len(recs) != 20 || recs[0].Cmd != "a-0" || recs[19].Cmd != "a-19" {
		t.Fatalf("records %v", recs)
	}
	st := c.Node(0).Status()
	if !st.IsLeader || st.Applied < 21 || st.Commit != st.Applied || !c.Node(0).Ready() {
		t.Fatalf("status %+v ready %v", st, c.Node(0).Ready())
	}
}

func TestThreeNodesApplyIdenticalSequences(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{NoSync: true})
	c.WaitLeader(5*time.Second, -1)
	// Proposals from every member (followers forward to the leader).
	ctx := ctxT(t, 20*time.Second)
	for i := range 60 {
		if err := c.Node(i%3).Propose(ctx, fmt.Appendf(nil, "p-%d", i)); err != nil && !errors.Is(err, raftnode.ErrProposalDropped) {
			t.Fatal(err)
		}
	}
	proposeN(t, c, "q", 20)
	checkSame(t, c, 0, 1, 2)
	hasAll(t, c.KV(1), "q", 20)
	ms := c.Node(0).Members()
	if len(ms) != 3 {
		t.Fatalf("members %+v", ms)
	}
	leaders := 0
	for _, m := range ms {
		if m.Leader {
			leaders++
		}
		if !m.Alive || m.Name == "" || m.Learner {
			t.Fatalf("member %+v", m)
		}
	}
	if leaders != 1 {
		t.Fatalf("leaders in %+v", ms)
	}
}

func TestLeaderCrashNewLeaderWritesContinue(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{})
	old := c.WaitLeader(5*time.Second, -1)
	proposeN(t, c, "before", 10)
	if err := c.Crash(old); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	nl := c.WaitLeader(5*time.Second, old)
	proposeN(t, c, "after", 10)
	t.Logf("new leader %d; writes resumed after %v", nl, time.Since(start))
	others := []int{}
	for i := range 3 {
		if i != old {
			others = append(others, i)
		}
	}
	checkSame(t, c, others...)
	hasAll(t, c.KV(others[0]), "before", 10)
	hasAll(t, c.KV(others[0]), "after", 10)
	c.Restart(old)
	checkSame(t, c, 0, 1, 2)
}

func TestCrashRestartRecoversFromDisk(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{})
	l := c.WaitLeader(5*time.Second, -1)
	f := (l + 1) % 3
	proposeN(t, c, "a", 30)
	checkSame(t, c, 0, 1, 2)
	before := c.KV(f).Records()
	c.Crash(f)
	proposeN(t, c, "b", 30)
	c.Restart(f)
	// The fresh state machine is rebuilt from the log on disk ...
	deadline := time.Now().Add(10 * time.Second)
	for c.KV(f).Applied() < before[len(before)-1].Index && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := c.KV(f).Records()
	if len(got) < len(before) || fmt.Sprint(got[:len(before)]) != fmt.Sprint(before) {
		t.Fatalf("replayed records differ:\n%v\nvs\n%v", got, before)
	}
	// ... and catches up with what it missed.
	checkSame(t, c, 0, 1, 2)
	hasAll(t, c.KV(f), "b", 30)
}

func TestWholeClusterRestartSameSequence(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{SnapshotEntries: 25})
	c.WaitLeader(5*time.Second, -1)
	proposeN(t, c, "a", 60)
	checkSame(t, c, 0, 1, 2)
	want := c.KV(0).Hash(c.KV(0).Applied())
	applied := c.KV(0).Applied()
	for i := range 3 {
		c.Crash(i)
	}
	for i := range 3 {
		c.Restart(i)
	}
	c.WaitLeader(5*time.Second, -1)
	if err := c.WaitApplied(10*time.Second, applied, 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if h := c.KV(i).Hash(applied); h != want {
			t.Fatalf("member %d: different sequence after restart", i)
		}
	}
	proposeN(t, c, "b", 5)
	checkSame(t, c, 0, 1, 2)
}

func TestFollowerBehindCompactionCatchesUpBySnapshot(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{SnapshotEntries: 20, CompactKeepEntries: 10, NoSync: true})
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
	// It keeps working as a normal member afterwards.
	proposeN(t, c, "c", 10)
	checkSame(t, c, 0, 1, 2)
}

func TestProposalsConvergeUnderFaults(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{Seed: 7, NoSync: true, SnapshotEntries: 50, CompactKeepEntries: 20})
	c.WaitLeader(5*time.Second, -1)
	c.SetFaults(0.1, 0.1, 10*time.Millisecond)
	proposeN(t, c, "f", 80)
	c.SetFaults(0, 0, 0)
	proposeN(t, c, "g", 1)
	checkSame(t, c, 0, 1, 2)
	hasAll(t, c.KV(0), "f", 80)
}
