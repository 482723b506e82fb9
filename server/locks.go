package server

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/tree"
)

// Locks and elections are nodes in the tree (PROTOCOL.md): lock adds an
// ephemeral sequential child "write-N" or "read-N" of the lock path, elect
// a child "cand-N" whose data is the candidate's value. Locks and
// candidacies are two queues that may share a path without touching: a
// child is granted once no conflicting earlier child of its class remains
// (a writer or candidate: none at all; a reader: no earlier writer). The
// grant is a function of the tree alone, so every member computes the same
// grants at the same zxid: apply re-computes them after each command that
// deleted a queued child, and a lock child's data records when it was
// granted (in that same step). The fencing token is the child's czxid.

// lockKind is the kind of a queued child.
type lockKind uint8

const (
	lockWrite lockKind = iota + 1
	lockRead
	lockCandidate
)

// lockClass is a queue: locks (writers and readers) or an election.
type lockClass uint8

const (
	classLock lockClass = iota + 1
	classElection
)

func (k lockKind) class() lockClass {
	switch k {
	case lockWrite, lockRead:
		return classLock
	case lockCandidate:
		return classElection
	}
	return 0
}

func (k lockKind) prefix() string {
	switch k {
	case lockWrite:
		return "write-"
	case lockRead:
		return "read-"
	case lockCandidate:
		return "cand-"
	}
	return ""
}

// exclusive: a writer or a candidate waits for every earlier child.
func (k lockKind) exclusive() bool { return k != lockRead }

// Errors of lock and election commands.
var (
	errNotHeld     = errors.New("server: not held")
	errWouldWait   = errors.New("server: the lock is held")
	errKindHeld    = errors.New("server: the session queues for this lock in the other mode")
	errStillQueued = errors.New("server: the node was granted or replaced; not withdrawn")
)

// queued is one queued child of a lock or election path.
type queued struct {
	name string
	seq  int64
	kind lockKind
}

// parseQueued reads a child name "write-0000000042"; ok is false for any
// other child (a user's node that happens to live there).
func parseQueued(name string) (queued, bool) {
	for _, k := range []lockKind{lockWrite, lockRead, lockCandidate} {
		rest, ok := strings.CutPrefix(name, k.prefix())
		if !ok || len(rest) != 10 {
			continue
		}
		for i := range len(rest) {
			if rest[i] < '0' || rest[i] > '9' {
				return queued{}, false
			}
		}
		seq, _ := strconv.ParseInt(rest, 10, 64)
		return queued{name: name, seq: seq, kind: k}, true
	}
	return queued{}, false
}

// queueOf returns the children of class among names, in sequence order.
func queueOf(names []string, class lockClass) []queued {
	var q []queued
	for _, n := range names {
		if k, ok := parseQueued(n); ok && k.kind.class() == class {
			q = append(q, k)
		}
	}
	slices.SortFunc(q, func(a, b queued) int { return cmp.Compare(a.seq, b.seq) })
	return q
}

// numGranted is how many of q (in sequence order) hold: the granted
// children are always a prefix of the queue.
func numGranted(q []queued) int {
	if len(q) == 0 {
		return 0
	}
	if q[0].kind.exclusive() {
		if bugLockOverlap && len(q) > 1 && q[1].kind == lockWrite && q[1].seq%7 == 0 {
			return 2
		}
		return 1
	}
	n := 0
	for n < len(q) && !q[n].kind.exclusive() {
		n++
	}
	return n
}

// splitChild splits a child's path into its parent and its name, the
// inverse of childPath.
func splitChild(p string) (dir, name string) {
	dir, name = path.Split(p)
	if dir != "/" {
		dir = strings.TrimSuffix(dir, "/")
	}
	return dir, name
}

// queuedState is where a waiter's child stands.
type queuedState uint8

const (
	childWaits queuedState = iota
	childHolds
	childGone // deleted, or replaced by another node of the same name
)

// stateOf says where the child node, created at czxid token, stands in t.
func stateOf(t treeReader, node string, token uint64) queuedState {
	if st, ok := t.Exists(node); !ok || st.Czxid != token {
		return childGone
	}
	if dir, name := splitChild(node); grantedNow(t, dir, name) {
		return childHolds
	}
	return childWaits
}

// grantedNow reports whether child name of dir holds, in t as it stands.
func grantedNow(t treeReader, dir, name string) bool {
	k, ok := parseQueued(name)
	if !ok {
		return false
	}
	names, _, err := t.Children(dir)
	if err != nil {
		return false
	}
	q := queueOf(names, k.kind.class())
	g := numGranted(q)
	for i := range g {
		if q[i].name == name {
			return true
		}
	}
	return false
}

// lockNodeData is the data of a lock child: who holds or waits, and when
// the lock was granted (absent while waiting). Candidates' data is their
// value instead.
type lockNodeData struct {
	Session   string `json:"session"`
	Shared    bool   `json:"shared"`
	GrantedMs int64  `json:"granted_ms,omitempty"`
}

func lockData(session uint64, kind lockKind, grantedMs int64) []byte {
	b, _ := json.Marshal(lockNodeData{Session: wire.FormatSession(session), Shared: kind == lockRead, GrantedMs: grantedMs})
	return b
}

// sessionQueued finds the child of dir that session queues with in class.
// Called with mu held.
func (sm *stateMachine) sessionQueued(session uint64, dir string, class lockClass) (queued, bool) {
	for _, p := range sm.tree.Ephemerals(session) {
		d, name := splitChild(p)
		if d != dir {
			continue
		}
		if k, ok := parseQueued(name); ok && k.kind.class() == class {
			return k, true
		}
	}
	return queued{}, false
}

// applyLock queues session for the lock or election of c.Lock, or finds the
// child it already queues with (a client that lost its connection asks
// again). Missing ancestors are created as container nodes. The result
// names the child (Results[0]) and whether it holds now. Called with mu
// held.
func (sm *stateMachine) applyLock(index uint64, now int64, c *command) applyResult {
	r := applyResult{Zxid: index}
	if _, ok := sm.sessions.Get(c.Session); !ok {
		r.Err = errSessionExpired
		return r
	}
	spec := c.Lock
	if k, ok := sm.sessionQueued(c.Session, spec.Path, spec.Kind.class()); ok {
		if k.kind != spec.Kind {
			r.Err = fmt.Errorf("%w: %s", errKindHeld, childPath(spec.Path, k.name))
			return r
		}
		p := childPath(spec.Path, k.name)
		st, _ := sm.tree.Exists(p)
		r.Granted = grantedNow(sm.tree, spec.Path, k.name)
		if !r.Granted && spec.Try {
			_, evs, err := sm.tree.Apply(index, now, tree.Op{Kind: tree.OpDelete, Path: p, Version: -1})
			sm.note(evs)
			if err == nil {
				r.Err = errWouldWait
				return r
			}
		}
		r.Results = []tree.Result{{Path: p, Stat: st}}
		return r
	}
	var ops []tree.Op
	dirExists := false
	if _, ok := sm.tree.Exists(spec.Path); ok {
		dirExists = true
	} else {
		// Top down, from the first missing ancestor.
		var missing []string
		for p := spec.Path; p != "/"; p = path.Dir(p) {
			if _, ok := sm.tree.Exists(p); ok {
				break
			}
			missing = append(missing, p)
		}
		for i := len(missing) - 1; i >= 0; i-- {
			ops = append(ops, tree.Op{Kind: tree.OpCreate, Path: missing[i], Version: -1, Container: true})
		}
	}
	granted := true
	if dirExists {
		names, _, _ := sm.tree.Children(spec.Path)
		q := queueOf(names, spec.Kind.class())
		// Appended last: it holds iff nothing before it conflicts.
		granted = numGranted(append(q, queued{seq: 1 << 62, kind: spec.Kind})) == len(q)+1
	}
	if !granted && spec.Try {
		r.Err = errWouldWait
		return r
	}
	data := spec.Value
	if spec.Kind != lockCandidate {
		var at int64
		if granted {
			at = now
		}
		data = lockData(c.Session, spec.Kind, at)
	}
	ops = append(ops, tree.Op{Kind: tree.OpCreate, Path: childPath(spec.Path, spec.Kind.prefix()), Data: data,
		Version: -1, Owner: c.Session, Sequential: true})
	results, evs, err := sm.tree.Multi(index, now, ops)
	if err != nil {
		var oe *tree.OpError
		if errors.As(err, &oe) {
			err = oe.Err
		}
		r.Err = err
		return r
	}
	sm.note(evs)
	r.Results = results[len(results)-1:]
	r.Granted = granted
	return r
}

// applyUnlock releases (or withdraws) the child session queues with in the
// class at c.Lock.Path. With Withdraw it deletes only that waiting child,
// and only while it still waits. Called with mu held.
func (sm *stateMachine) applyUnlock(index uint64, now int64, c *command) applyResult {
	r := applyResult{Zxid: index}
	if _, ok := sm.sessions.Get(c.Session); !ok {
		r.Err = errSessionExpired
		return r
	}
	spec := c.Lock
	k, ok := sm.sessionQueued(c.Session, spec.Path, spec.Class)
	if !ok {
		r.Err = errNotHeld
		return r
	}
	p := childPath(spec.Path, k.name)
	if spec.Withdraw != 0 {
		if st, _ := sm.tree.Exists(p); st.Czxid != spec.Withdraw || grantedNow(sm.tree, spec.Path, k.name) {
			r.Err = errStillQueued
			return r
		}
	}
	_, evs, err := sm.tree.Apply(index, now, tree.Op{Kind: tree.OpDelete, Path: p, Version: -1})
	sm.note(evs)
	r.Err = err
	return r
}

// grantAfterDeletes computes, after a command that deleted queued children,
// which children of those queues hold now and did not before, records the
// grant time in the data of the lock children among them, and remembers
// them all for this member's waiters. One release so wakes exactly the
// waiters it admits. Called with mu held, after the command's tree changes.
func (sm *stateMachine) grantAfterDeletes(index uint64, now int64) {
	type queueKey struct {
		dir   string
		class lockClass
	}
	var keys []queueKey
	var gone map[queueKey][]queued
	n := len(sm.cmdEvents)
	for i := range n {
		e := &sm.cmdEvents[i]
		if e.Type != tree.EventDeleted {
			continue
		}
		dir, name := splitChild(e.Path)
		k, ok := parseQueued(name)
		if !ok {
			continue
		}
		key := queueKey{dir, k.kind.class()}
		if gone == nil {
			gone = make(map[queueKey][]queued)
		}
		if _, seen := gone[key]; !seen {
			keys = append(keys, key)
		}
		gone[key] = append(gone[key], k)
	}
	for _, key := range keys {
		names, _, err := sm.tree.Children(key.dir)
		if err != nil {
			continue // the whole queue went
		}
		after := queueOf(names, key.class)
		before := append(slices.Clone(after), gone[key]...)
		slices.SortFunc(before, func(a, b queued) int { return cmp.Compare(a.seq, b.seq) })
		held := make(map[string]bool)
		for _, k := range before[:numGranted(before)] {
			held[k.name] = true
		}
		for _, k := range after[:numGranted(after)] {
			if held[k.name] {
				continue
			}
			p := childPath(key.dir, k.name)
			sm.grants = append(sm.grants, p)
			if k.kind.class() != classLock {
				continue
			}
			data, st, err := sm.tree.Get(p)
			var d lockNodeData
			if err != nil || json.Unmarshal(data, &d) != nil {
				continue // not a node lock made; leave its data alone
			}
			_, evs, err := sm.tree.Apply(index, now, tree.Op{Kind: tree.OpSet, Path: p,
				Data: lockData(st.EphemeralOwner, k.kind, now), Version: -1})
			if err == nil {
				sm.note(evs)
			}
		}
	}
}

// currentLeader returns the earliest candidate of the election at dir.
func currentLeader(t treeReader, dir string) (p string, data []byte, st tree.Stat, ok bool) {
	names, _, err := t.Children(dir)
	if err != nil {
		return "", nil, tree.Stat{}, false
	}
	q := queueOf(names, classElection)
	if len(q) == 0 {
		return "", nil, tree.Stat{}, false
	}
	p = childPath(dir, q[0].name)
	data, st, err = t.Get(p)
	return p, data, st, err == nil
}
