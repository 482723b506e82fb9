package tree

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadOp is returned for an Op whose Kind is not one of the Op constants.
var ErrBadOp = errors.New("tree: unknown op kind")

// seqPlaceholder stands in for a sequential suffix while validating a path:
// every suffix is exactly ten bytes ("%010d" of an int32).
const seqPlaceholder = "0000000000"

// Apply performs one mutation at zxid, stamping times with now (Unix ms). It
// is Multi of one op, but returns the cause itself rather than an *OpError.
// On error the tree is unchanged.
//
// Stat rules, as ZooKeeper's DataTree: create sets czxid=mzxid=pzxid=zxid and
// ctime=mtime=now; creating or deleting a child increments the parent's
// cversion and sets its pzxid to zxid (its mzxid is unchanged); set increments
// version and sets mzxid=zxid, mtime=now. A sequential create appends the
// parent's cversion before the create, formatted "%010d".
//
// Events, in order: create gives EventCreated(path) then
// EventChildrenChanged(parent); delete gives EventDeleted for every removed
// node (deepest first) then EventChildrenChanged(parent); set gives
// EventDataChanged(path).
func (t *Tree) Apply(zxid uint64, now int64, op Op) (Result, []Event, error) {
	// A single op checks everything before it mutates anything, so it needs
	// no undo log.
	return t.apply(zxid, now, op, nil, nil)
}

// Multi performs ops in order, all or nothing, at one zxid. Later ops see the
// effects of earlier ones. On success it returns one Result per op (create:
// the real path and stat; set: the stat; delete and check: zero) and the
// events of all ops in order. On failure the tree is unchanged, no events are
// returned and the error is an *OpError naming the failing op.
func (t *Tree) Multi(zxid uint64, now int64, ops []Op) ([]Result, []Event, error) {
	var undo undoLog
	results := make([]Result, len(ops))
	var events []Event
	for i, op := range ops {
		r, ev, err := t.apply(zxid, now, op, events, &undo)
		if err != nil {
			undo.rollback()
			return nil, nil, &OpError{Index: i, Err: err}
		}
		results[i] = r
		events = ev
	}
	return results, events, nil
}

// DeleteEphemerals deletes every ephemeral node of the session owner at zxid
// and returns the events. Ephemeral nodes have no children, so the order of
// deletion does not matter; it is sorted for determinism.
func (t *Tree) DeleteEphemerals(zxid uint64, now int64, owner uint64) []Event {
	var events []Event
	for _, p := range t.Ephemerals(owner) {
		// Cannot fail: the index holds only existing, childless nodes.
		_, ev, err := t.apply(zxid, now, Op{Kind: OpDelete, Path: p, Version: -1, System: true}, events, nil)
		if err == nil {
			events = ev
		}
	}
	return events
}

// undoLog holds the inverse of each mutation a multi made so far. A nil log
// records nothing.
type undoLog []func()

func (u *undoLog) push(f func()) {
	if u != nil {
		*u = append(*u, f)
	}
}

func (u *undoLog) rollback() {
	for i := len(*u) - 1; i >= 0; i-- {
		(*u)[i]()
	}
	*u = nil
}

// apply checks op completely, then mutates; it appends its events to events.
func (t *Tree) apply(zxid uint64, now int64, op Op, events []Event, u *undoLog) (Result, []Event, error) {
	switch op.Kind {
	case OpCreate:
		return t.create(zxid, now, op, events, u)
	case OpSet:
		return t.set(zxid, now, op, events, u)
	case OpDelete:
		return t.delete(zxid, op, events, u)
	case OpCheck:
		return t.check(op, events)
	default:
		return Result{}, events, fmt.Errorf("%w: %d", ErrBadOp, op.Kind)
	}
}

// checkPath applies the checks common to every op: a valid path (p is the
// path as it will be named) and, for a client op, not a reserved one.
func checkPath(p string, system bool) error {
	if err := ValidatePath(p, MaxPath); err != nil {
		return err
	}
	if !system && isReserved(p) {
		return fmt.Errorf("%w: %s", ErrReadOnly, p)
	}
	return nil
}

func checkData(data []byte) error {
	if len(data) > MaxData {
		return fmt.Errorf("%w: data of %d bytes is over %d bytes", ErrTooLarge, len(data), MaxData)
	}
	return nil
}

func checkVersion(p string, n *node, version int64) error {
	if version != -1 && version != int64(n.version) {
		return fmt.Errorf("%w: %s is at version %d, not %d", ErrBadVersion, p, n.version, version)
	}
	return nil
}

// ownData normalises empty data to nil, so a tree and its snapshot copy are
// indistinguishable.
func ownData(data []byte) []byte {
	if len(data) == 0 {
		return nil
	}
	return data
}

func (t *Tree) create(zxid uint64, now int64, op Op, events []Event, u *undoLog) (Result, []Event, error) {
	p := op.Path
	if op.Sequential {
		p += seqPlaceholder
	}
	if err := checkPath(p, op.System); err != nil {
		return Result{}, events, err
	}
	if err := checkData(op.Data); err != nil {
		return Result{}, events, err
	}
	if p == "/" {
		return Result{}, events, fmt.Errorf("%w: /", ErrNodeExists)
	}
	parentPath, name := splitPath(p)
	parent := t.lookupMut(parentPath)
	if parent == nil {
		return Result{}, events, fmt.Errorf("%w: parent %s of %s", ErrNoNode, parentPath, p)
	}
	if parent.owner != 0 {
		return Result{}, events, fmt.Errorf("%w: %s", ErrNoChildrenForEphemerals, parentPath)
	}
	if op.Sequential {
		name = seqName(name[:len(name)-len(seqPlaceholder)], parent.cversion)
		p = joinPath(parentPath, name)
	}
	ci, i, exists := parent.search(name)
	if exists {
		return Result{}, events, fmt.Errorf("%w: %s", ErrNodeExists, p)
	}

	n := &node{
		name:      strings.Clone(name), // do not pin the caller's whole path string
		data:      ownData(op.Data),
		czxid:     zxid,
		mzxid:     zxid,
		pzxid:     zxid,
		ctime:     now,
		mtime:     now,
		owner:     op.Owner,
		ttlMs:     op.TTLMs,
		container: op.Container,
		epoch:     t.epoch,
	}
	parent.insertChild(ci, i, n)
	oldCversion, oldPzxid := parent.cversion, parent.pzxid
	parent.cversion++
	parent.pzxid = zxid
	t.count++
	t.index(p, n)
	u.push(func() {
		// Later ops were undone first, so the child is back where it was
		// by name, though not necessarily at the same chunk offset.
		cj, j, _ := parent.search(n.name)
		parent.removeChild(cj, j)
		parent.cversion, parent.pzxid = oldCversion, oldPzxid
		t.count--
		t.unindex(p, n)
	})
	events = append(events,
		Event{Type: EventCreated, Path: p, Zxid: zxid, Data: n.data},
		Event{Type: EventChildrenChanged, Path: parentPath, Zxid: zxid})
	return Result{Path: p, Stat: n.stat()}, events, nil
}

func (t *Tree) set(zxid uint64, now int64, op Op, events []Event, u *undoLog) (Result, []Event, error) {
	if err := checkPath(op.Path, op.System); err != nil {
		return Result{}, events, err
	}
	if err := checkData(op.Data); err != nil {
		return Result{}, events, err
	}
	n := t.lookupMut(op.Path)
	if n == nil {
		return Result{}, events, fmt.Errorf("%w: %s", ErrNoNode, op.Path)
	}
	if err := checkVersion(op.Path, n, op.Version); err != nil {
		return Result{}, events, err
	}

	oldData, oldVersion, oldMzxid, oldMtime := n.data, n.version, n.mzxid, n.mtime
	n.data = ownData(op.Data)
	n.version++
	n.mzxid = zxid
	n.mtime = now
	u.push(func() {
		n.data, n.version, n.mzxid, n.mtime = oldData, oldVersion, oldMzxid, oldMtime
	})
	events = append(events, Event{Type: EventDataChanged, Path: op.Path, Zxid: zxid, Data: n.data})
	return Result{Stat: n.stat()}, events, nil
}

func (t *Tree) delete(zxid uint64, op Op, events []Event, u *undoLog) (Result, []Event, error) {
	p := op.Path
	if err := ValidatePath(p, MaxPath); err != nil {
		return Result{}, events, err
	}
	if p == "/" {
		return Result{}, events, fmt.Errorf("%w: cannot delete the root", ErrBadPath)
	}
	if err := checkPath(p, op.System); err != nil {
		return Result{}, events, err
	}
	n := t.lookup(p)
	if n == nil {
		return Result{}, events, fmt.Errorf("%w: %s", ErrNoNode, p)
	}
	if err := checkVersion(p, n, op.Version); err != nil {
		return Result{}, events, err
	}
	if n.numChildren() > 0 && !op.Recursive {
		return Result{}, events, fmt.Errorf("%w: %s has %d children", ErrNotEmpty, p, n.numChildren())
	}

	parentPath, name := splitPath(p)
	parent := t.lookupMut(parentPath)
	ci, i, _ := parent.search(name)
	parent.removeChild(ci, i)
	oldCversion, oldPzxid := parent.cversion, parent.pzxid
	parent.cversion++
	parent.pzxid = zxid
	walkPost(p, n, func(q string, m *node) {
		t.count--
		t.unindex(q, m)
		events = append(events, Event{Type: EventDeleted, Path: q, Zxid: zxid})
	})
	u.push(func() {
		cj, j, _ := parent.search(n.name)
		parent.insertChild(cj, j, n)
		parent.cversion, parent.pzxid = oldCversion, oldPzxid
		walkPost(p, n, func(q string, m *node) {
			t.count++
			t.index(q, m)
		})
	})
	events = append(events, Event{Type: EventChildrenChanged, Path: parentPath, Zxid: zxid})
	return Result{}, events, nil
}

func (t *Tree) check(op Op, events []Event) (Result, []Event, error) {
	if err := checkPath(op.Path, op.System); err != nil {
		return Result{}, events, err
	}
	n := t.lookup(op.Path)
	if n == nil {
		return Result{}, events, fmt.Errorf("%w: %s", ErrNoNode, op.Path)
	}
	if err := checkVersion(op.Path, n, op.Version); err != nil {
		return Result{}, events, err
	}
	return Result{}, events, nil
}

// seqName is prefix and n as ten digits, zero-padded (fmt's %010d, which
// showed in profiles of sequential creates).
func seqName(prefix string, n int32) string {
	if n < 0 {
		return fmt.Sprintf("%s%010d", prefix, n)
	}
	var digits [10]byte
	for i := len(digits) - 1; i >= 0; i-- {
		digits[i] = byte('0' + n%10)
		n /= 10
	}
	return prefix + string(digits[:])
}
