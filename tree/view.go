package tree

import (
	"io"
	"strings"
)

// Point-in-time views. A View shares every node with the tree at the moment
// it was taken; from then on the tree copies a node before changing it (and
// every ancestor on its path, whose child pointer changes), so the shared
// nodes never change and the view can be read, without any lock, while the
// tree goes on applying. Copies are made at most once per node per view:
// each node carries the epoch it was made in, View starts a new epoch, and a
// node of an older epoch is copied by the first change that reaches it.
// Copying a node copies its child chunks (the pointers, not the children):
// a parent with many children costs one copy of them per view that it
// outlives. The tree itself never references a view.

// View is a read-only, point-in-time copy of a tree.
type View struct {
	root  *node
	count int
}

// View returns a point-in-time view of t. It costs O(1) now and one copy of
// each node that a later change reaches, once.
func (t *Tree) View() *View {
	v := &View{root: t.root, count: t.count}
	t.epoch++
	return v
}

// NumNodes returns the number of nodes in the view.
func (v *View) NumNodes() int { return v.count }

// WriteSnapshot writes the view in the format of Tree.WriteSnapshot; the
// same state gives the same bytes. It may run while the tree changes.
func (v *View) WriteSnapshot(w io.Writer) error { return writeSnapshot(v.root, w) }

// lookupMut walks to p like lookup, first copying every node on the way
// that belongs to an older epoch, so the returned node (nil if there is
// none) and its ancestors may be changed in place.
func (t *Tree) lookupMut(p string) *node {
	if t.root.epoch != t.epoch {
		t.root = t.root.clone(t.epoch)
	}
	n := t.root
	for rest := p[1:]; rest != ""; {
		name, tail, _ := strings.Cut(rest, "/")
		ci, i, ok := n.search(name)
		if !ok {
			return nil
		}
		c := n.kids[ci][i]
		if c.epoch != t.epoch {
			c = c.clone(t.epoch)
			n.kids[ci][i] = c
		}
		n = c
		rest = tail
	}
	return n
}

// clone returns a copy of n in epoch e with child chunks of its own.
func (n *node) clone(e uint32) *node {
	c := *n
	c.epoch = e
	if n.kids != nil {
		c.kids = make([][]*node, len(n.kids), cap(n.kids))
		for i, chunk := range n.kids {
			c.kids[i] = append(make([]*node, 0, max(len(chunk), min(2*len(chunk), maxChunk))), chunk...)
		}
	}
	return &c
}
