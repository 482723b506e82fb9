package main

import (
	"strings"
	"testing"
)

// member add, promote and remove by hand, against one member.
func TestMemberCommands(t *testing.T) {
	addr, _ := startDev(t)
	ep := "--endpoints=" + addr
	if o := arbor(t, nil, "", "member", "add", ep, "spare", "127.0.0.1:1", "--learner"); o.code != 0 {
		t.Fatalf("member add --learner: %+v", o)
	}
	o := arbor(t, nil, "", "member", "list", ep)
	if o.code != 0 || !strings.Contains(o.stdout, "spare") || !strings.Contains(o.stdout, "learner") {
		t.Fatalf("member list after add: %+v", o)
	}
	if o := arbor(t, nil, "", "member", "add", ep, "spare", "127.0.0.1:1"); o.code != 1 || !strings.HasPrefix(o.stderr, "NODE_EXISTS:") {
		t.Fatalf("adding it again: %+v", o)
	}
	if o := arbor(t, nil, "", "member", "promote", ep, "dev"); o.code != 1 || !strings.Contains(o.stderr, "voter already") {
		t.Fatalf("promoting a voter: %+v", o)
	}
	if o := arbor(t, nil, "", "member", "remove", ep, "spare"); o.code != 0 {
		t.Fatalf("member remove: %+v", o)
	}
	if o := arbor(t, nil, "", "member", "remove", ep, "spare"); o.code != 1 || !strings.HasPrefix(o.stderr, "NO_NODE:") {
		t.Fatalf("removing it again: %+v", o)
	}
	if o := arbor(t, nil, "", "member", "remove", ep, "dev"); o.code != 1 || !strings.Contains(o.stderr, "last voter") {
		t.Fatalf("removing the last voter: %+v", o)
	}
	for _, args := range [][]string{{"member"}, {"member", "add", ep, "x"}, {"member", "add", ep, "x", "nohostport"}} {
		if o := arbor(t, nil, "", args...); o.code != 2 {
			t.Errorf("arbor %v: exit %d, want 2; stderr %q", args, o.code, o.stderr)
		}
	}
}
