package server

import (
	"maps"
	"testing"

	"github.com/arbor-db/arbor/raftnode"
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
