package server

import (
	"testing"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/tree"
)

// BAD_VERSION names the version the node is at and the one the request
// expected, as the tree's error does.
func TestBadVersionNamesBothVersions(t *testing.T) {
	tr := tree.New()
	if _, _, err := tr.Apply(1, 0, tree.Op{Kind: tree.OpCreate, Path: "/a"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.Apply(2, 0, tree.Op{Kind: tree.OpSet, Path: "/a", Version: -1}); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []tree.OpKind{tree.OpSet, tree.OpDelete} {
		_, _, err := tr.Apply(3, 0, tree.Op{Kind: kind, Path: "/a", Version: 0})
		we := toWireError(err, kind, "/a")
		if we.Code != wire.CodeBadVersion || we.Message != "/a is at version 1, not 0" {
			t.Errorf("op %v at a stale version: %+v, want BAD_VERSION %q", kind, we, "/a is at version 1, not 0")
		}
	}
}
