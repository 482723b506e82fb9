package tree

import (
	"sort"
	"strings"
)

// node is one znode. It is kept small because a tree holds millions of them:
// it stores its own name (not its path), its children as a slice sorted by
// name (binary search keeps lookups fast even with 100k children), and
// ZooKeeper's int stat fields as int32. DataLength and NumChildren are
// derived, not stored.
type node struct {
	name     string
	data     []byte
	children []*node

	czxid, mzxid, pzxid uint64
	ctime, mtime        int64
	owner               uint64 // ephemeral owner session; 0 = persistent
	ttlMs               int64
	version, cversion   int32
	container           bool
}

func (n *node) stat() Stat {
	return Stat{
		Czxid:          n.czxid,
		Mzxid:          n.mzxid,
		Pzxid:          n.pzxid,
		Ctime:          n.ctime,
		Mtime:          n.mtime,
		Version:        n.version,
		Cversion:       n.cversion,
		DataLength:     int32(len(n.data)),
		NumChildren:    int32(len(n.children)),
		EphemeralOwner: n.owner,
	}
}

// childIndex returns the index of the child called name, or where it would
// be inserted, and whether it exists.
func (n *node) childIndex(name string) (int, bool) {
	i := sort.Search(len(n.children), func(i int) bool { return n.children[i].name >= name })
	return i, i < len(n.children) && n.children[i].name == name
}

func (n *node) child(name string) *node {
	if i, ok := n.childIndex(name); ok {
		return n.children[i]
	}
	return nil
}

// insertChild inserts c at index i, which childIndex returned.
func (n *node) insertChild(i int, c *node) {
	n.children = append(n.children, nil)
	copy(n.children[i+1:], n.children[i:])
	n.children[i] = c
}

// removeChild removes the child at index i.
func (n *node) removeChild(i int) {
	copy(n.children[i:], n.children[i+1:])
	n.children[len(n.children)-1] = nil
	n.children = n.children[:len(n.children)-1]
	if len(n.children) == 0 {
		n.children = nil // let a big emptied slice be collected
	}
}

// lookup walks from the root along a valid path.
func (t *Tree) lookup(p string) *node {
	n := t.root
	for rest := p[1:]; rest != "" && n != nil; {
		name, tail, _ := strings.Cut(rest, "/")
		n = n.child(name)
		rest = tail
	}
	return n
}
