package faults

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
)

// TestDuplicatedProposalAppliesOnce: a network that duplicates a follower's
// forwarded proposal (MsgProp) must not make the write apply twice; an
// unconditional set applied twice bumps the version twice (and could
// resurrect old data after later writes).
//
// Found by the long fault run (4 of 16 seeds): the state machine applied
// every copy of a command. It now applies a command of one origin only when
// its seq is above the highest applied (server stateMachine.origins, kept in
// the snapshot).
func TestDuplicatedProposalAppliesOnce(t *testing.T) {
	c := newCluster(t, 3, 7)
	defer c.stopAll()
	l := c.leader()
	for deadline := time.Now().Add(30 * time.Second); l < 0; l = c.leader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	f := (l + 1) % c.size()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, client.Config{Endpoints: []string{c.members[f].addr}, NoDiscovery: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close(ctx)
	if _, _, err := cl.Create(ctx, "/x", []byte("0")); err != nil {
		t.Fatal(err)
	}
	c.net.SetFaults(0, 1, 0) // every message twice
	for i := range 20 {
		st, err := cl.Set(ctx, "/x", []byte{byte('a' + i)}, client.AnyVersion)
		if err != nil {
			t.Fatal(err)
		}
		_, got, err := cl.Get(ctx, "/x")
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != st.Version {
			t.Fatalf("set %d answered version %d, a read right after sees version %d: the write was applied twice", i, st.Version, got.Version)
		}
	}
	c.net.SetFaults(0, 0, 0)
}
