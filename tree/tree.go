package tree

import (
	"fmt"
	"slices"
)

// Tree is the znode tree. The zero value is not usable; call New or
// ReadSnapshot.
type Tree struct {
	root  *node
	count int // nodes, including the root

	// ephemerals indexes the ephemeral nodes of each owner session, so that
	// closing a session does not scan the tree.
	ephemerals map[uint64]map[string]struct{}
	// containers and ttls index the nodes a later reaper must inspect.
	containers map[string]struct{}
	ttls       map[string]struct{}

	// epoch is the current mutation epoch: View freezes every node of an
	// older one (see view.go).
	epoch uint32
}

func newEmpty() *Tree {
	return &Tree{
		ephemerals: make(map[uint64]map[string]struct{}),
		containers: make(map[string]struct{}),
		ttls:       make(map[string]struct{}),
	}
}

// New returns a tree holding the root "/" and the reserved node "/arbor",
// both with zero stats.
func New() *Tree {
	t := newEmpty()
	t.root = &node{}
	t.root.addLastChild(&node{name: Reserved[1:]})
	t.count = 2
	return t
}

// NumNodes returns the number of nodes, including "/" and "/arbor".
func (t *Tree) NumNodes() int { return t.count }

// Get returns the data and stat of the node at path. The data is the tree's
// own slice: callers must not modify it.
func (t *Tree) Get(path string) ([]byte, Stat, error) {
	n, err := t.find(path)
	if err != nil {
		return nil, Stat{}, err
	}
	return n.data, n.stat(), nil
}

// Exists returns the stat of the node at path, and whether it exists. An
// invalid path does not exist.
func (t *Tree) Exists(path string) (Stat, bool) {
	n, err := t.find(path)
	if err != nil {
		return Stat{}, false
	}
	return n.stat(), true
}

// Children returns the sorted names of the children of the node at path,
// and its stat.
func (t *Tree) Children(path string) ([]string, Stat, error) {
	n, err := t.find(path)
	if err != nil {
		return nil, Stat{}, err
	}
	names := make([]string, 0, n.numChildren())
	n.eachChild(func(c *node) { names = append(names, c.name) })
	return names, n.stat(), nil
}

// Flags returns the container flag and TTL of the node at path, for a reaper
// that decides whether the node has outlived its purpose.
func (t *Tree) Flags(path string) (container bool, ttlMs int64, ok bool) {
	n, err := t.find(path)
	if err != nil {
		return false, 0, false
	}
	return n.container, n.ttlMs, true
}

func (t *Tree) find(path string) (*node, error) {
	if err := ValidatePath(path, MaxPath); err != nil {
		return nil, err
	}
	n := t.lookup(path)
	if n == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoNode, path)
	}
	return n, nil
}

// Ephemerals returns the sorted paths of the ephemeral nodes owned by the
// session owner.
func (t *Tree) Ephemerals(owner uint64) []string {
	return sortedKeys(t.ephemerals[owner])
}

// NumEphemerals returns how many ephemeral nodes the session owner owns.
func (t *Tree) NumEphemerals(owner uint64) int { return len(t.ephemerals[owner]) }

// Owners returns the sorted ids of the sessions that own ephemeral nodes.
func (t *Tree) Owners() []uint64 {
	ids := make([]uint64, 0, len(t.ephemerals))
	for id := range t.ephemerals {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Containers returns the sorted paths of the container nodes. It is the seam
// for a container reaper, which deletes a container whose last child went
// away (ZooKeeper: cversion > 0 and no children).
func (t *Tree) Containers() []string { return sortedKeys(t.containers) }

// TTLNodes returns the sorted paths of the nodes created with a TTL, for a
// reaper that deletes a childless one not modified for its TTL.
func (t *Tree) TTLNodes() []string { return sortedKeys(t.ttls) }

func sortedKeys(m map[string]struct{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// index records a newly attached node in the ephemeral, container and TTL
// indexes.
func (t *Tree) index(p string, n *node) {
	if n.owner != 0 {
		paths := t.ephemerals[n.owner]
		if paths == nil {
			paths = make(map[string]struct{})
			t.ephemerals[n.owner] = paths
		}
		paths[p] = struct{}{}
	}
	if n.container {
		t.containers[p] = struct{}{}
	}
	if n.ttlMs != 0 {
		t.ttls[p] = struct{}{}
	}
}

// unindex is the inverse of index.
func (t *Tree) unindex(p string, n *node) {
	if n.owner != 0 {
		paths := t.ephemerals[n.owner]
		delete(paths, p)
		if len(paths) == 0 {
			delete(t.ephemerals, n.owner)
		}
	}
	if n.container {
		delete(t.containers, p)
	}
	if n.ttlMs != 0 {
		delete(t.ttls, p)
	}
}

// walkPost calls fn for every node of the subtree at n (path p), children
// before parents, siblings in name order.
func walkPost(p string, n *node, fn func(p string, n *node)) {
	n.eachChild(func(c *node) { walkPost(joinPath(p, c.name), c, fn) })
	fn(p, n)
}
