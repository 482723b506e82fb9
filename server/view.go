package server

import (
	"encoding/json"

	"github.com/arbor-db/arbor/session"
	"github.com/arbor-db/arbor/tree"
	"github.com/arbor-db/arbor/watch"
)

// The state machine's read API. Everything outside apply reads the state
// through stateMachine.read, which runs a function under the read lock with
// a stateView: one consistent state at one applied zxid, with no apply in
// between. A watch is registered through the same view, so a read that
// sets a watch sees exactly the state before the first change the watch
// reports (apply takes the write lock, and matches changes to watches
// under it).

// treeReader is the read-only part of *tree.Tree that readers get.
type treeReader interface {
	Get(path string) ([]byte, tree.Stat, error)
	Exists(path string) (tree.Stat, bool)
	Children(path string) ([]string, tree.Stat, error)
	Flags(path string) (container bool, ttlMs int64, ok bool)
	NumEphemerals(owner uint64) int
	NumNodes() int
	Containers() []string
	TTLNodes() []string
}

var _ treeReader = (*tree.Tree)(nil)

// stateView is valid only inside the function given to read.
type stateView struct{ sm *stateMachine }

// read runs fn with a view of the state under the read lock. fn must not
// block on anything but the state machine's own locks, and must not call
// read again (a writer waiting between two read locks would deadlock it).
func (sm *stateMachine) read(fn func(v stateView)) {
	sm.mu.RLock()
	defer sm.mu.RUnlock()
	fn(stateView{sm})
}

// zxid is the applied index: the zxid the view shows.
func (v stateView) zxid() uint64 { return v.sm.applied.Load() }

func (v stateView) tree() treeReader { return v.sm.tree }

func (v stateView) session(id uint64) (session.Session, bool) { return v.sm.sessions.Get(id) }

func (v stateView) sessionIDs() []uint64 { return v.sm.sessions.IDs() }

func (v stateView) numSessions() int { return v.sm.sessions.Len() }

// memberRecords maps the name of every /arbor/members record to its version.
func (v stateView) memberRecords() map[string]int64 {
	t := v.sm.tree
	names, _, err := t.Children(membersPath)
	if err != nil {
		return nil
	}
	out := make(map[string]int64, len(names))
	for _, n := range names {
		if st, ok := t.Exists(membersPath + "/" + n); ok {
			out[n] = int64(st.Version)
		}
	}
	return out
}

// memberAttrs returns the published attributes of every member, by name.
func (v stateView) memberAttrs() map[string]memberAttrs {
	t := v.sm.tree
	names, _, err := t.Children(membersPath)
	if err != nil {
		return nil
	}
	out := make(map[string]memberAttrs, len(names))
	for _, n := range names {
		data, _, err := t.Get(membersPath + "/" + n)
		if err != nil {
			continue
		}
		var m memberAttrs
		if json.Unmarshal(data, &m) == nil {
			out[n] = m
		}
	}
	return out
}

// Watches. Readers hold only the read lock, and several may register at
// once, so the registry has watchMu of its own; apply holds the write lock,
// which excludes every reader, and needs no watchMu. watchMu is only ever
// taken with mu held.

// addWatch registers a watch of c and returns its id.
func (v stateView) addWatch(c *conn, spec watch.Spec) uint64 {
	v.sm.watchMu.Lock()
	defer v.sm.watchMu.Unlock()
	return v.sm.watches.Add(c, spec)
}

// removeWatch removes watch id of c and reports whether c had it.
func (v stateView) removeWatch(c *conn, id uint64) bool {
	v.sm.watchMu.Lock()
	defer v.sm.watchMu.Unlock()
	return v.sm.watches.Remove(c, id)
}

// dropWatches removes every watch of c (its connection ended).
func (v stateView) dropWatches(c *conn) {
	v.sm.watchMu.Lock()
	defer v.sm.watchMu.Unlock()
	v.sm.watches.RemoveOwner(c)
}

// numWatches returns how many watches c has (c nil: all of them).
func (v stateView) numWatches(c *conn) int {
	v.sm.watchMu.Lock()
	defer v.sm.watchMu.Unlock()
	if c == nil {
		return v.sm.watches.Len()
	}
	return v.sm.watches.Count(c)
}

// history answers the changes after zxid that a watch of spec reports, or
// watch.ErrTooOld. The history changes only under the write lock.
func (v stateView) history(zxid uint64, spec watch.Spec) ([]tree.Event, error) {
	return v.sm.history.Since(zxid, spec)
}

// count returns what f counts in the current state (for gauges).
func (sm *stateMachine) count(f func(v stateView) int) (n int) {
	sm.read(func(v stateView) { n = f(v) })
	return n
}

func (v stateView) historyLen() int { return v.sm.history.Len() }
