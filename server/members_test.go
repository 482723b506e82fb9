package server

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/tree"
)

// A member that joined a moment ago is in raft's configuration before gossip
// has spread word of it to every member: members must not call it dead in
// that window (the README's "arbor member list" right after a join), and must
// still take gossip's word for the members gossip knows.
func TestMembersAliveBeforeGossipHearsOfAMember(t *testing.T) {
	ts, _ := startFakeRep(t, func(c *Config) { c.GossipAddr = "127.0.0.1:0" }, func(f *fakeRep) {
		f.members = []raftnode.MemberInfo{
			{ID: 1, Name: "m1", PeerURL: "127.0.0.1:1", Leader: true, Alive: true},
			{ID: 2, Name: "new", PeerURL: "127.0.0.1:2", Learner: true, Alive: true},
			{ID: 3, Name: "gone", PeerURL: "127.0.0.1:3", Alive: false},
		}
	})
	waitReady(t, ts.addr)
	r := helloed(t, ts.addr).call(`{"id":2,"op":"members"}`)
	if !r.OK || len(r.Members) != 3 {
		t.Fatalf("members: %+v", r)
	}
	got := map[string]bool{}
	for _, m := range r.Members {
		got[m.Name] = m.Alive
	}
	if want := map[string]bool{"m1": true, "new": true, "gone": false}; !maps.Equal(got, want) {
		t.Fatalf("alive %v, want %v", got, want)
	}
}

// The leader deletes the /arbor/members record of a member no longer in the
// configuration, and a member whose record went while it is still one (a
// removal and a re-add racing the leader's delete) publishes it again.
func TestMemberRecordsFollowTheConfiguration(t *testing.T) {
	gone := (&command{Type: cmdMemberAttrs, Origin: origin{Member: 9, Seq: 1},
		Member: memberAttrs{Name: "gone", ClientURL: "127.0.0.1:9", PeerURL: "127.0.0.1:19"}}).encode(nil)
	ts, _ := startFakeRep(t, func(c *Config) { c.ReapInterval = 20 * time.Millisecond }, func(f *fakeRep) {
		if err := f.Propose(context.Background(), gone); err != nil {
			t.Fatal(err)
		}
	})
	records := func() string {
		var names []string
		ts.srv.sm.read(func(v stateView) { names = slices.Sorted(maps.Keys(v.memberRecords())) })
		return strings.Join(names, " ")
	}
	waitFor := func(want, what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); records() != want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: records %q, want %q", what, records(), want)
			}
		}
	}
	waitFor("m1", "the removed member's record deleted, this member's published")
	del := (&command{Type: cmdTreeOps, Origin: origin{Member: 9, Seq: 2},
		Ops: []tree.Op{{Kind: tree.OpDelete, Path: membersPath + "/m1", Version: -1, System: true}}}).encode(nil)
	if err := ts.rep.Propose(context.Background(), del); err != nil {
		t.Fatal(err)
	}
	waitFor("m1", "this member's record published again")
}
