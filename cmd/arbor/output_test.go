package main

import (
	"strings"
	"testing"

	"github.com/arbor-db/arbor/client/wire"
)

// members lists by name, whatever order the server answers in (it answers
// in raft id order).
func TestPrintMembersSortsByName(t *testing.T) {
	var b strings.Builder
	ms := []wire.Member{{Name: "c", Role: "follower"}, {Name: "a", Role: "leader"}, {Name: "b", Role: "follower"}}
	if err := printMembers(&b, ms); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n")[1:] {
		names = append(names, strings.Fields(line)[0])
	}
	if got := strings.Join(names, ","); got != "a,b,c" {
		t.Fatalf("members printed in order %s:\n%s", got, b.String())
	}
	if ms[0].Name != "c" {
		t.Fatal("printMembers reordered its caller's slice")
	}
}
