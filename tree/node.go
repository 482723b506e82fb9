package tree

import "strings"

// node is one znode. It is kept small because a tree holds millions of them:
// it stores its own name (not its path), its children as sorted chunks (see
// children.go), and ZooKeeper's int stat fields as int32. DataLength is
// derived, not stored; the child count is kept because summing chunk
// lengths on every stat would cost O(chunks).
type node struct {
	name string
	data []byte
	kids [][]*node // sorted chunks of children; see children.go

	czxid, mzxid, pzxid uint64
	ctime, mtime        int64
	owner               uint64 // ephemeral owner session; 0 = persistent
	ttlMs               int64
	version, cversion   int32
	nkids               int32 // number of children; fits in what was padding
	// epoch is the tree epoch the node was made or copied in; a node of an
	// older epoch may be shared with a View and is copied before it is
	// changed (see view.go).
	epoch     uint32
	container bool
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
		NumChildren:    n.nkids,
		EphemeralOwner: n.owner,
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
