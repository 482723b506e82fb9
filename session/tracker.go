package session

import (
	"slices"
	"sync"
	"time"
)

// Tracker keeps a deadline per live session, as the leader sees it: a
// session whose deadline passes without a renewal is due to expire. Only the
// leader's Tracker decides anything; every member keeps one up to date with
// the table (Add on create, Remove on close and expiry) so that a member
// that becomes leader only has to Reset it.
//
// Deadlines live in buckets of a fixed granularity, rounded up (so a session
// never expires early), as ZooKeeper's ExpiryQueue: a renewal moves a
// session between two buckets and an expiry scan visits only the buckets
// that are due, whatever the number of sessions.
//
// The clock is injected and read only through it; a Tracker starts no
// goroutine. It is safe for concurrent use.
type Tracker struct {
	mu   sync.Mutex
	now  func() time.Time
	base time.Time
	gran int64 // bucket width, ns

	entries map[uint64]*tracked
	buckets map[int64]map[uint64]struct{}
	next    int64 // the first bucket not yet scanned
	// overdue holds sessions given back after a failed expiry: past their
	// deadline, still expiring, returned by the next Expired.
	overdue map[uint64]struct{}
}

// overdueBucket marks a tracked session that sits in overdue.
const overdueBucket = -1 << 63

type tracked struct {
	timeout  int64 // ns
	bucket   int64
	expiring bool // handed out by Expired, not yet removed (or Reset)
}

// NewTracker returns an empty tracker reading time from now, with deadlines
// rounded up to granularity (which must not exceed the smallest session
// timeout).
func NewTracker(now func() time.Time, granularity time.Duration) *Tracker {
	t := &Tracker{
		now:     now,
		base:    now(),
		gran:    max(int64(granularity), 1),
		entries: make(map[uint64]*tracked),
		buckets: make(map[int64]map[uint64]struct{}),
		overdue: make(map[uint64]struct{}),
	}
	return t
}

// at is the monotonic time since base, in ns.
func (t *Tracker) at() int64 { return int64(t.now().Sub(t.base)) }

// place puts e (id) in the bucket of now+timeout, rounded up.
func (t *Tracker) place(id uint64, e *tracked, now int64) {
	b := (now + e.timeout + t.gran - 1) / t.gran
	e.bucket = b
	set := t.buckets[b]
	if set == nil {
		set = make(map[uint64]struct{})
		t.buckets[b] = set
	}
	set[id] = struct{}{}
}

func (t *Tracker) unplace(id uint64, e *tracked) {
	if e.bucket == overdueBucket {
		delete(t.overdue, id)
		return
	}
	if set := t.buckets[e.bucket]; set != nil {
		delete(set, id)
		if len(set) == 0 {
			delete(t.buckets, e.bucket)
		}
	}
}

// unplaceTracked takes e out of wherever it waits: its bucket, or overdue
// (given back, still expiring). One that Expired handed out and that was not
// given back waits nowhere.
func (t *Tracker) unplaceTracked(id uint64, e *tracked) {
	if !e.expiring || e.bucket == overdueBucket {
		t.unplace(id, e)
	}
}

// Add starts tracking a session with a full timeout from now. Adding a
// tracked session renews it.
func (t *Tracker) Add(id uint64, timeout time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.entries[id]; ok {
		t.unplaceTracked(id, e)
		e.timeout, e.expiring = int64(timeout), false
		t.place(id, e, t.at())
		return
	}
	e := &tracked{timeout: int64(timeout)}
	t.entries[id] = e
	t.place(id, e, t.at())
}

// Remove stops tracking a session (closed or expired).
func (t *Tracker) Remove(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[id]
	if !ok {
		return
	}
	t.unplaceTracked(id, e)
	delete(t.entries, id)
}

// Touch renews a session: its deadline becomes now plus its timeout. It
// reports false, and changes nothing, for a session it does not track or
// one already handed out by Expired: the leader has decided to expire it,
// so a renewal must not be confirmed.
func (t *Tracker) Touch(id uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[id]
	if !ok || e.expiring {
		return false
	}
	t.unplace(id, e)
	t.place(id, e, t.at())
	return true
}

// Reset gives every session a full timeout from now and forgets which were
// being expired: what a new leader does, so that no session expires because
// leadership moved.
func (t *Tracker) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.at()
	clear(t.buckets)
	clear(t.overdue)
	for id, e := range t.entries {
		e.expiring = false
		t.place(id, e, now)
	}
	t.next = now / t.gran
}

// Replace tracks exactly the given sessions (id to timeout), each with a
// full timeout from now: after a snapshot is restored.
func (t *Tracker) Replace(sessions map[uint64]time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.entries)
	clear(t.buckets)
	clear(t.overdue)
	now := t.at()
	for id, timeout := range sessions {
		e := &tracked{timeout: int64(timeout)}
		t.entries[id] = e
		t.place(id, e, now)
	}
	t.next = now / t.gran
}

// Expired returns the sessions whose deadline has passed, sorted, and marks
// them expiring: Touch no longer renews them and later calls do not return
// them again, until Remove (the expiry was applied) or GiveBack (it was not).
func (t *Tracker) Expired() []uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	// A bucket is due once its upper bound (the rounded-up deadline) is
	// not in the future.
	due := t.at() / t.gran
	var out []uint64
	for id := range t.overdue {
		t.entries[id].expiring = true
		out = append(out, id)
	}
	clear(t.overdue)
	for ; t.next <= due; t.next++ {
		for id := range t.buckets[t.next] {
			t.entries[id].expiring = true
			out = append(out, id)
		}
		delete(t.buckets, t.next)
	}
	slices.Sort(out)
	return out
}

// GiveBack returns sessions handed out by Expired whose expiry proposal
// failed: the next Expired returns them again. They stay expiring, so Touch
// does not renew them: a proposal that timed out may still be in the log and
// commit later, and a renewal confirmed meanwhile would promise the client
// time the cluster is about to take. Only Reset (a new term) gives them a
// deadline again.
func (t *Tracker) GiveBack(ids []uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		e, ok := t.entries[id]
		if !ok || !e.expiring {
			continue
		}
		e.bucket = overdueBucket
		t.overdue[id] = struct{}{}
	}
}

// Remaining returns how long a session has until its deadline (negative
// once past), and whether it is tracked and not being expired.
func (t *Tracker) Remaining(id uint64) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[id]
	if !ok || e.expiring {
		return 0, false
	}
	if e.bucket == overdueBucket {
		return 0, true
	}
	return time.Duration(e.bucket*t.gran - t.at()), true
}

// Len returns the number of tracked sessions.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}
