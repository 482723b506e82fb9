package raftnode_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/raftnode/rafttest"
)

// One caller keeps many proposals in flight: every one is accepted, applied
// once and in the order it was handed over.
func TestProposeAsyncPipelinesFromOneCaller(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{NoSync: true})
	l := c.WaitLeader(5*time.Second, -1)
	const n = 200
	results := make(chan error, n)
	ctx := ctxT(t, 10*time.Second)
	for i := range n {
		if err := c.Node(l).ProposeAsync(ctx, fmt.Appendf(nil, "async-%d", i), func(err error) { results <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if err := <-results; err != nil {
			t.Fatalf("proposal refused: %v", err)
		}
	}
	eventually(t, "every async proposal is applied", func() bool { return c.KV(l).Has(fmt.Sprintf("async-%d", n-1)) })
	hasAll(t, c.KV(l), "async", n)
	last := -1
	for _, r := range c.KV(l).Records() {
		var i int
		if _, err := fmt.Sscanf(r.Cmd, "async-%d", &i); err == nil {
			if i != last+1 {
				t.Fatalf("async-%d applied after async-%d", i, last)
			}
			last = i
		}
	}
}

// A member without a leader refuses the proposal through the callback.
func TestProposeAsyncReportsDroppedWithoutLeader(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{NoSync: true})
	old := c.WaitLeader(5*time.Second, -1)
	c.Isolate(old)
	eventually(t, "the isolated leader steps down", func() bool { return !c.Node(old).Status().IsLeader })
	got := make(chan error, 1)
	if err := c.Node(old).ProposeAsync(ctxT(t, time.Second), []byte("lost"), func(err error) { got <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, raftnode.ErrProposalDropped) {
		t.Fatalf("callback got %v, want ErrProposalDropped", err)
	}
}

// A proposal bound to a term goes in only from the leader of that term: a
// follower does not forward it, and the leader of a later term refuses it
// too, where a plain proposal would be forwarded and committed by the new
// leader.
func TestProposeAsLeaderOnlyInItsTerm(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{NoSync: true})
	l := c.WaitLeader(5*time.Second, -1)
	term := c.Node(l).Status().Term
	propose := func(i int, term uint64, cmd string) error {
		got := make(chan error, 1)
		if err := c.Node(i).ProposeAsLeader(ctxT(t, 5*time.Second), term, []byte(cmd), func(err error) { got <- err }); err != nil {
			return err
		}
		return <-got
	}
	if err := propose(l, term, "leader-in-term"); err != nil {
		t.Fatalf("the leader of term %d: %v", term, err)
	}
	eventually(t, "it is applied", func() bool { return c.KV(l).Has("leader-in-term") })
	f := (l + 1) % 3
	if err := propose(f, term, "from-follower"); !errors.Is(err, raftnode.ErrNotLeaderInTerm) {
		t.Fatalf("a follower: %v, want ErrNotLeaderInTerm", err)
	}
	if err := propose(l, term+1, "other-term"); !errors.Is(err, raftnode.ErrNotLeaderInTerm) {
		t.Fatalf("the leader, naming another term: %v, want ErrNotLeaderInTerm", err)
	}
	if err := propose(l, 0, "no-term"); !errors.Is(err, raftnode.ErrBadConfig) {
		t.Fatalf("no term: %v, want ErrBadConfig", err)
	}
	// A plain proposal from the follower is forwarded and applied: the
	// bound ones above must not have been.
	if err := c.Node(f).Propose(ctxT(t, 5*time.Second), []byte("plain")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the plain one is applied", func() bool { return c.KV(l).Has("plain") })
	if c.KV(l).Has("from-follower") || c.KV(l).Has("other-term") {
		t.Fatal("a proposal bound to a term was applied though refused")
	}
}
