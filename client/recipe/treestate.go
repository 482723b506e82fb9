package recipe

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/wire"
)

// TreeNode is one node of a TreeCache: its path, data and stat.
type TreeNode struct {
	Path string
	Data []byte
	Stat TreeStat
}

// TreeStat is the part of a node's stat that a TreeCache keeps exact. Watch
// events carry no stat, so the cache derives it from the changes by the
// tree's rules (a create sets czxid, mzxid and pzxid and bumps the parent's
// cversion and pzxid; a set bumps version and sets mzxid; a delete bumps
// the parent's cversion and pzxid). The times and the ephemeral owner
// cannot be derived, so they are left out: read the node for them.
type TreeStat struct {
	Czxid, Mzxid, Pzxid uint64
	Version, Cversion   int64
	NumChildren         int64
}

func treeStat(s *client.Stat) TreeStat {
	return TreeStat{Czxid: s.Czxid, Mzxid: s.Mzxid, Pzxid: s.Pzxid,
		Version: s.Version, Cversion: s.Cversion, NumChildren: s.NumChildren}
}

type treeEntry struct {
	data []byte
	stat TreeStat
	kids map[string]struct{} // names of the children
}

// treeState is a subtree as a TreeCache holds it, by path.
type treeState struct {
	root  string
	nodes map[string]*treeEntry
	// base, while the first read is being caught up: the zxid each read
	// was answered at (see loadTree). Nil afterwards.
	base map[string]uint64
}

func newTreeState(root string) *treeState {
	return &treeState{root: root, nodes: map[string]*treeEntry{}}
}

// fromResync builds the state a resync reports.
func fromResync(root string, nodes []client.Node) *treeState {
	st := newTreeState(root)
	for _, n := range nodes {
		if !st.inside(n.Path) {
			continue
		}
		st.nodes[n.Path] = &treeEntry{data: n.Data, stat: treeStat(&n.Stat), kids: map[string]struct{}{}}
	}
	for p := range st.nodes {
		if p == root {
			continue
		}
		parent, name := splitTreePath(p)
		if e := st.nodes[parent]; e != nil {
			e.kids[name] = struct{}{}
		}
	}
	return st
}

func (st *treeState) inside(p string) bool {
	return p == st.root || strings.HasPrefix(p, st.root+"/")
}

func splitTreePath(p string) (parent, name string) {
	i := strings.LastIndexByte(p, '/')
	return p[:i], p[i+1:]
}

// holds reports whether the state already holds the changes of path at
// zxid: true only while the first read is being caught up, for a change
// at or before the read that saw path (or that saw it absent: the nearest
// read ancestor).
func (st *treeState) holds(path string, zxid uint64) bool {
	if st.base == nil {
		return false
	}
	for p := path; ; p, _ = splitTreePath(p) {
		if b, ok := st.base[p]; ok {
			return zxid <= b
		}
		if p == st.root || !st.inside(p) {
			return false
		}
	}
}

// apply applies one create, set or delete event. Each part of it, the
// node's own change and its parent's child count, is applied unless the
// state already holds it (holds). A recursive delete reports every node,
// deepest first, and bumps only the top node's parent; bumping the inner
// parents too is harmless, since they are deleted in the same zxid.
func (st *treeState) apply(ev client.WatchEvent) {
	p, z := ev.Path, ev.Zxid
	if !st.inside(p) {
		return
	}
	parent, name := splitTreePath(p)
	var pe *treeEntry
	if p != st.root && !st.holds(parent, z) {
		pe = st.nodes[parent]
	}
	self := !st.holds(p, z)
	switch ev.Type {
	case client.EventCreated:
		if self {
			st.nodes[p] = &treeEntry{data: ev.Data, stat: TreeStat{Czxid: z, Mzxid: z, Pzxid: z}, kids: map[string]struct{}{}}
		}
		if pe != nil {
			if _, ok := pe.kids[name]; !ok {
				pe.kids[name] = struct{}{}
				pe.stat.NumChildren++
			}
			pe.stat.Cversion++
			pe.stat.Pzxid = z
		}
	case client.EventData:
		if e := st.nodes[p]; self && e != nil {
			e.data = ev.Data
			e.stat.Version++
			e.stat.Mzxid = z
		}
	case client.EventDeleted:
		if self {
			delete(st.nodes, p)
		}
		if pe != nil {
			if _, ok := pe.kids[name]; ok {
				delete(pe.kids, name)
				pe.stat.NumChildren--
			}
			pe.stat.Cversion++
			pe.stat.Pzxid = z
		}
	}
}

func (st *treeState) node(p string) (TreeNode, bool) {
	e := st.nodes[p]
	if e == nil {
		return TreeNode{}, false
	}
	return TreeNode{Path: p, Data: e.data, Stat: e.stat}, true
}

func (st *treeState) children(p string) ([]string, bool) {
	e := st.nodes[p]
	if e == nil {
		return nil, false
	}
	return slices.Sorted(maps.Keys(e.kids)), true
}

// walk appends the subtree under p, parents first and siblings by name.
func (st *treeState) walk(p string, out []TreeNode) []TreeNode {
	n, ok := st.node(p)
	if !ok {
		return out
	}
	out = append(out, n)
	kids, _ := st.children(p)
	for _, k := range kids {
		out = st.walk(p+"/"+k, out)
	}
	return out
}

// loadTree reads the subtree under root, node by node, after a watch of
// it was set at some zxid A, and returns it with the zxid R of the last
// read.
//
// The reads are not one snapshot: each node is read at its own zxid b (the
// answer to its children read; its data is from a get just before, kept
// only when the children read shows the same czxid and mzxid, so it is
// still the data at b). A node that a listing did not show, or a read
// found missing, did not exist at the zxid of that read, nor did anything
// under it. So every path has a base zxid at which the state holds it
// exactly: its own read's, or that of its nearest read ancestor (holds).
// The watch reports every change after A <= b, so applying to each node
// exactly its changes after its base (and to a parent's child count
// exactly its children's creates and deletes after the parent's base)
// makes every node, and so the whole state, exact at every zxid from R on.
// That is why the cache publishes nothing before it has applied every
// event up to some zxid >= R (TreeCache.catchUp).
func loadTree(ctx context.Context, c *client.Client, root string) (*treeState, uint64, error) {
	st := newTreeState(root)
	st.base = map[string]uint64{}
	var last uint64
	var read func(p string) error
	read = func(p string) error {
		e, b, err := readTreeNode(ctx, c, p)
		if err != nil {
			return err
		}
		st.base[p], last = b, max(last, b)
		if e == nil {
			return nil
		}
		st.nodes[p] = e
		for _, k := range slices.Sorted(maps.Keys(e.kids)) {
			if err := read(p + "/" + k); err != nil {
				return err
			}
		}
		return nil
	}
	if err := read(root); err != nil {
		return nil, 0, err
	}
	// A listed child that was gone by its own read is not the parent's
	// child from the parent's base on: the delete's event, after that
	// base, takes it out of the parent's list and count.
	return st, last, nil
}

// readTreeNode reads one node (nil when it does not exist) and the zxid
// the answer holds at.
func readTreeNode(ctx context.Context, c *client.Client, p string) (*treeEntry, uint64, error) {
	for {
		data, gst, err := c.Get(ctx, p)
		if errors.Is(err, client.ErrNoNode) {
			// Only exists says "absent" with a zxid.
			resp, err := c.Do(ctx, &wire.Request{Op: wire.OpExists, Path: p})
			if err != nil {
				return nil, 0, err
			}
			if resp.Stat.Stat == nil {
				return nil, resp.Zxid, nil
			}
			continue // created again meanwhile
		}
		if err != nil {
			return nil, 0, err
		}
		resp, err := c.Do(ctx, &wire.Request{Op: wire.OpChildren, Path: p})
		if errors.Is(err, client.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		s := resp.Stat.Stat
		if s == nil || s.Czxid != gst.Czxid || s.Mzxid != gst.Mzxid {
			continue // changed between the two reads
		}
		e := &treeEntry{data: data, stat: treeStat(s), kids: map[string]struct{}{}}
		for _, k := range resp.Children {
			e.kids[k] = struct{}{}
		}
		return e, resp.Zxid, nil
	}
}
