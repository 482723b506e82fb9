package raftnode_test

import (
	"testing"
	"time"

	"github.com/arbor-db/arbor/raftnode/rafttest"
)

// A member that is the only voter elects itself at once, fresh and after a
// restart, instead of waiting out an election timeout: here the timeout is
// 500 ticks of 20ms (10s to 20s), so a leader within 2s can only come from
// the immediate campaign.
func TestOnlyVoterCampaignsAtOnce(t *testing.T) {
	c := rafttest.NewCluster(t, 1, rafttest.Options{TickInterval: 20 * time.Millisecond, ElectionTicks: 500, NoSync: true})
	c.WaitLeader(2*time.Second, -1)
	proposeN(t, c, "before", 3)
	if err := c.Crash(0); err != nil {
		t.Fatal(err)
	}
	c.Restart(0)
	c.WaitLeader(2*time.Second, -1)
	proposeN(t, c, "after", 3)
	hasAll(t, c.KV(0), "before", 3)
}

// A member of a larger cluster does not campaign early: with the same slow
// election timeout, three members have no leader after a second.
func TestMemberOfManyWaitsForElectionTimeout(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.Options{TickInterval: 20 * time.Millisecond, ElectionTicks: 500, NoSync: true})
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if l := c.Leader(); l >= 0 {
			t.Fatalf("member %d leads within a second, before any election timeout", l)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
