package raftnode_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/raftnode/rafttest"
)

func TestLinearizableReadSeesCommittedWrites(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{NoSync: true})
	l := c.WaitLeader(5*time.Second, -1)
	f := (l + 1) % 3
	ctx := ctxT(t, 20*time.Second)
	for i := range 20 {
		cmd := "w-" + string(rune('a'+i))
		if err := c.ProposeKV(ctx, cmd); err != nil {
			t.Fatal(err)
		}
		// The write is applied on the leader; a linearizable read on a
		// follower must observe it as soon as it returns.
		if err := c.Node(f).LinearizableRead(ctx); err != nil {
			t.Fatal(err)
		}
		if !c.KV(f).Has(cmd) {
			t.Fatalf("follower read returned before applying %s", cmd)
		}
	}
	// Concurrent reads share ReadIndex requests and all return.
	errs := make(chan error, 50)
	for range 50 {
		go func() { errs <- c.Node(l).LinearizableRead(ctx) }()
	}
	for range 50 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestPartitionedOldLeaderCannotRead(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{NoSync: true})
	old := c.WaitLeader(5*time.Second, -1)
	proposeN(t, c, "a", 3)
	c.Isolate(old)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err := c.Node(old).LinearizableRead(ctx)
	if err == nil {
		t.Fatal("isolated old leader served a linearizable read")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	// CheckQuorum made it step down, so the error names the missing leader.
	if !errors.Is(err, raftnode.ErrNoLeader) {
		t.Fatalf("err %v, want ErrNoLeader", err)
	}
	if err := c.Node(old).Propose(ctxT(t, time.Second), []byte("lost")); !errors.Is(err, raftnode.ErrProposalDropped) {
		t.Fatalf("propose without a leader: %v", err)
	}
	if c.Node(old).Ready() {
		t.Fatal("member without a leader reports Ready")
	}
	// The majority moved on.
	nl := c.WaitLeader(5*time.Second, old)
	if err := c.Node(nl).LinearizableRead(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	proposeN(t, c, "b", 3)
	c.Heal()
	if err := c.Node(old).LinearizableRead(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	hasAll(t, c.KV(old), "b", 3)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func memberNames(ms []raftnode.MemberInfo, learners bool) []string {
	var out []string
	for _, m := range ms {
		if m.Learner == learners {
			out = append(out, m.Name)
		}
	}
	slices.Sort(out)
	return out
}

func TestMembershipAddLearnerPromoteRemove(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{NoSync: true, SnapshotEntries: 30, CompactKeepEntries: 10})
	l := c.WaitLeader(5*time.Second, -1)
	proposeN(t, c, "a", 40) // compacted: the joiner needs a snapshot
	ctx := ctxT(t, 20*time.Second)

	j := c.AddJoiner("n3")
	if err := c.Node(l).AddMember(ctx, "n3", "n3", true); err != nil {
		t.Fatal(err)
	}
	if got := memberNames(c.Node(l).Members(), true); !slices.Equal(got, []string{"n3"}) {
		t.Fatalf("learners %v", got)
	}
	if err := c.Node(l).AddMember(ctx, "n3", "n3", true); !errors.Is(err, raftnode.ErrMemberExists) {
		t.Fatalf("re-add: %v", err)
	}
	checkSame(t, c, 0, 1, 2, j)
	hasAll(t, c.KV(j), "a", 40)
	if err := c.Node(l).PromoteMember(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	if err := c.Node(l).PromoteMember(ctx, "n3"); !errors.Is(err, raftnode.ErrNotLearner) {
		t.Fatalf("promote voter: %v", err)
	}
	eventually(t, "the new member sees itself promoted", func() bool {
		return slices.Equal(memberNames(c.Node(j).Members(), false), []string{"n0", "n1", "n2", "n3"})
	})

	// Remove a follower.
	f := (l + 1) % 3
	if err := c.Node(l).RemoveMember(ctx, c.Name(f)); err != nil {
		t.Fatal(err)
	}
	if got := len(memberNames(c.Node(l).Members(), false)); got != 3 {
		t.Fatalf("voters after removal: %d", got)
	}
	if err := c.Node(l).AddMember(ctx, c.Name(f), "x", false); !errors.Is(err, raftnode.ErrMemberIDReused) {
		t.Fatalf("re-adding a removed id: %v", err)
	}
	proposeN(t, c, "b", 10)

	// Remove the leader itself: it hands leadership over first.
	if err := c.Node(l).RemoveMember(ctx, c.Name(l)); err != nil {
		t.Fatal(err)
	}
	nl := c.WaitLeader(5*time.Second, l)
	eventually(t, "the new leader applies the old leader's removal", func() bool {
		got := memberNames(c.Node(nl).Members(), false)
		return !slices.Contains(got, c.Name(l)) && len(got) == 2
	})
	proposeN(t, c, "c", 10)
	var rest []int
	for i := range 4 {
		if i != l && i != f {
			rest = append(rest, i)
		}
	}
	checkSame(t, c, rest...)
	done, runErr := c.Exited(l)
	select {
	case <-done:
		if !errors.Is(runErr(), raftnode.ErrRemoved) {
			t.Fatalf("removed leader's Run: %v", runErr())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("removed leader still running")
	}
}

func TestSecondMembershipChangeWhilePendingIsRejected(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{NoSync: true})
	l := c.WaitLeader(5*time.Second, -1)
	proposeN(t, c, "a", 1)
	// Nobody hears the leader and the followers cannot elect another: the
	// change stays uncommitted in the leader's log.
	for i := range 3 {
		for j := range 3 {
			if i != j && j != l {
				c.BlockOneWay(i, j)
			}
		}
	}
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := c.Node(l).AddMember(short, "x", "x", true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first change: %v", err)
	}
	if err := c.Node(l).AddMember(ctxT(t, time.Second), "y", "y", true); !errors.Is(err, raftnode.ErrMemberChangePending) {
		t.Fatalf("second change: %v", err)
	}
}

func TestTransferLeadership(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{NoSync: true})
	l := c.WaitLeader(5*time.Second, -1)
	proposeN(t, c, "a", 5)
	before := c.Node(l).Status().LeaderChanges
	if err := c.Node(l).TransferLeadership(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if st := c.Node(l).Status(); st.IsLeader || st.Leader == 0 || st.LeaderChanges <= before {
		t.Fatalf("after transfer: %+v", st)
	}
	nl := c.WaitLeader(5*time.Second, l)
	// A follower's transfer is a no-op.
	if err := c.Node(l).TransferLeadership(ctxT(t, time.Second)); err != nil {
		t.Fatal(err)
	}
	if c.Leader() != nl {
		t.Fatal("follower transfer moved leadership")
	}
	proposeN(t, c, "b", 5)
}
