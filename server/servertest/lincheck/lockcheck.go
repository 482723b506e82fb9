package lincheck

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Lock checking. Clients of the lock workload (lockload.go) take exclusive
// locks, write to a fenced resource with the lock's fencing token, and
// unlock; every grant is recorded with the times it was asked for, granted
// (Lock returned), lost (the session's Client.Context was done) and ended
// (the holder stopped acting: unlock sent), all read from this process's
// monotonic clock, so the times of different clients compare. CheckLocks
// then holds the log to:
//
//   - always: the resource never accepted a token lower than one it had
//     accepted before (the fence's job: a cross-check), every token went to
//     one session only, and a lock asked for after another grant of the same
//     path returned gets a higher token (tokens follow the real-time order
//     of grants);
//   - with mutual exclusion checked (no client process paused): no two
//     holders of a path overlap, where a holder's time ends at its unlock
//     or as soon as its Client.Context was done, whichever is first (a
//     holder must learn it lost the lock before another is granted), and
//     the fence never refused a holder that had not learned it.
//
// Writes of stale holders (their context done, or paused on purpose) that
// the fence refuses are expected: Figures counts them.

// LockGrant is one grant of a lock to a client.
type LockGrant struct {
	Path    string
	Client  int // the workload's client number
	Session string
	Member  string // the member the client was on (for reports)
	Token   uint64

	// Asked is when the request that got this place in the queue was sent,
	// Granted when Lock returned it.
	Asked, Granted time.Time
	// Lost is when the session's Client.Context was done while held (zero:
	// never), and LostCause why.
	Lost      time.Time
	LostCause string
	// Deadline is the session deadline (Client.Deadline) when Lock
	// returned, and LostDeadline when Lost was recorded: a loss
	// recorded after its deadline came late.
	Deadline, LostDeadline time.Time
	// End is when the holder stopped acting on the lock: just before its
	// unlock was sent, or when it was paused. Zero while it holds.
	End time.Time
	// Paused: the holder was paused on purpose at End (its client vanished
	// without a word, as a process stopped by the OS), to wake up later and
	// write with its old token.
	Paused bool
	// Released: the unlock was acknowledged.
	Released bool

	// The write to the fenced resource: Wrote, at WroteAt; Accepted by the
	// fence or refused; Stale: the holder had learned it lost the lock (or
	// was paused) when it wrote.
	Wrote, Accepted, Stale bool
	WroteAt                time.Time
}

// LockLog records a lock workload. It is safe for concurrent use.
type LockLog struct {
	start time.Time

	mu       sync.Mutex
	grants   []LockGrant
	accepted map[string][]uint64 // per path, the tokens its resource accepted, in order
}

// NewLockLog returns an empty log; reports give times from now.
func NewLockLog() *LockLog { return &LockLog{start: time.Now(), accepted: map[string][]uint64{}} }

// Grant records a grant and returns its handle for the other methods.
func (l *LockLog) Grant(g LockGrant) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.grants = append(l.grants, g)
	return len(l.grants) - 1
}

// Lost records that grant h's session context was done at t (the first
// time only).
func (l *LockLog) Lost(h int, t time.Time, cause error, deadline time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if g := &l.grants[h]; g.Lost.IsZero() {
		g.Lost, g.LostCause, g.LostDeadline = t, fmt.Sprint(cause), deadline
	}
}

// End records that grant h's holder stopped acting on it at t (paused: it
// was paused on purpose).
func (l *LockLog) End(h int, t time.Time, paused bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.grants[h].End, l.grants[h].Paused = t, paused
}

// Released records that grant h's unlock was acknowledged.
func (l *LockLog) Released(h int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.grants[h].Released = true
}

// Wrote records grant h's write to the resource its lock guards, at t.
// Call it while the resource is locked, so that accepted writes are
// recorded in the order the resource accepted them.
func (l *LockLog) Wrote(h int, t time.Time, accepted, stale bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := &l.grants[h]
	g.Wrote, g.WroteAt, g.Accepted, g.Stale = true, t, accepted, stale
	if accepted {
		l.accepted[g.Path] = append(l.accepted[g.Path], g.Token)
	}
}

// Highest returns the highest token the resource of path accepted so far
// (0: none).
func (l *LockLog) Highest(path string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.accepted[path]) == 0 {
		return 0
	}
	return slices.Max(l.accepted[path])
}

// Grants returns a copy of the grants recorded so far.
func (l *LockLog) Grants() []LockGrant {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.grants)
}

// LockFigures are what a lock workload did.
type LockFigures struct {
	Grants, Released int
	// Lost: grants whose session context was done while held; Handovers:
	// grants that came while an earlier holder of the path had not yet
	// sent its unlock but had learned it lost the lock.
	Lost, Handovers int
	Paused          int // holders paused on purpose
	// Accepted: writes the fence accepted; StaleRefused: writes of stale
	// holders it refused (expected); LiveRefused: writes of holders that
	// had not learned they lost the lock that it refused (a violation
	// where mutual exclusion is checked).
	Accepted, StaleRefused, LiveRefused int
}

// Figures counts what the log holds.
func (l *LockLog) Figures() LockFigures {
	gs := l.Grants()
	var f LockFigures
	for _, g := range gs {
		f.Grants++
		if g.Released {
			f.Released++
		}
		if !g.Lost.IsZero() && (g.End.IsZero() || g.Lost.Before(g.End)) {
			f.Lost++
		}
		if g.Paused {
			f.Paused++
		}
		switch {
		case !g.Wrote:
		case g.Accepted:
			f.Accepted++
		case g.Stale:
			f.StaleRefused++
		default:
			f.LiveRefused++
		}
	}
	for _, q := range byPath(gs) {
		// The latest end and the latest hold end of the grants before.
		var end, hold time.Time
		for _, g := range q {
			if end.After(g.Granted) && !hold.After(g.Granted) {
				f.Handovers++
			}
			end, hold = later(end, g.End), later(hold, holdEnd(g))
		}
	}
	return f
}

// errNotEnded: the workload recorded a grant without its end (a bug of
// the workload, not of the cluster).
var errNotEnded = errors.New("lincheck: a lock grant never ended")

// ErrLockViolation: a lock or fence check failed (wraps ErrViolation).
var ErrLockViolation = fmt.Errorf("%w: lock", ErrViolation)

// CheckLocks checks the log of a finished lock workload (every holder has
// ended). With exclusive, it also checks mutual exclusion: pass it unless
// a client process was paused (a paused holder cannot learn in time that it
// lost its lock; holders the workload pauses on purpose are accounted for).
func CheckLocks(l *LockLog, exclusive bool) []error {
	gs := l.Grants()
	l.mu.Lock()
	accepted := maps.Clone(l.accepted)
	l.mu.Unlock()
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format+"%s", append(append([]any{ErrLockViolation}, args...), l.origin())...))
	}
	for path, tokens := range accepted {
		for i := 1; i < len(tokens); i++ {
			if tokens[i] < tokens[i-1] {
				fail("the resource %s guards accepted token %d after token %d", path, tokens[i], tokens[i-1])
			}
		}
	}
	owner := map[uint64]LockGrant{}
	for _, g := range gs {
		if g.End.IsZero() {
			errs = append(errs, fmt.Errorf("%w: %s", errNotEnded, l.describe(g)))
		}
		if o, ok := owner[g.Token]; ok && o.Session != g.Session {
			fail("token %d of %s granted to two sessions: %s and %s", g.Token, g.Path, l.describe(o), l.describe(g))
		}
		owner[g.Token] = g
	}
	for _, q := range byPath(gs) {
		errs = append(errs, l.checkOrder(q)...)
		if exclusive {
			errs = append(errs, l.checkExclusive(q)...)
		}
	}
	if exclusive {
		for _, g := range gs {
			if g.Wrote && !g.Accepted && !g.Stale {
				fail("the fence refused the write of %s, which had not learned it lost the lock: a later holder wrote while it held", l.describe(g))
			}
		}
	}
	return errs
}

// checkOrder: a lock asked for after another grant of its path returned
// gets a higher token (its node is created after that grant's). q is one
// path's grants in the order they were granted.
func (l *LockLog) checkOrder(q []LockGrant) []error {
	var errs []error
	// best[i] is the grant with the highest token among q[:i+1].
	best := make([]int, len(q))
	for i := range q {
		best[i] = i
		if i > 0 && q[best[i-1]].Token > q[i].Token {
			best[i] = best[i-1]
		}
	}
	for _, b := range q {
		// The grants that returned before b was asked for.
		n, _ := slices.BinarySearchFunc(q, b.Asked, func(g LockGrant, t time.Time) int { return g.Granted.Compare(t) })
		if n == 0 {
			continue
		}
		if a := q[best[n-1]]; a.Token >= b.Token {
			errs = append(errs, fmt.Errorf("%w: %s asked for after %s returned, yet its token is not higher%s",
				ErrLockViolation, l.describe(b), l.describe(a), l.origin()))
		}
	}
	return errs
}

// checkExclusive: no grant returns while an earlier holder of the path
// still acts on it without having learned it lost it.
func (l *LockLog) checkExclusive(q []LockGrant) []error {
	var errs []error
	var holder *LockGrant // the earlier grant whose hold ends last
	for i := range q {
		b := &q[i]
		if holder != nil && holdEnd(*holder).After(b.Granted) {
			errs = append(errs, fmt.Errorf("%w: %s held %s until %s, yet %s was granted it at %s: two holders at once%s",
				ErrLockViolation, l.describe(*holder), b.Path, l.at(holdEnd(*holder)), l.describe(*b), l.at(b.Granted), l.origin()))
		}
		if holder == nil || holdEnd(*b).After(holdEnd(*holder)) {
			holder = b
		}
	}
	return errs
}

// holdEnd is when g's holder stopped acting as the holder: its end, or as
// soon as it learned it lost the lock.
func holdEnd(g LockGrant) time.Time {
	if !g.Lost.IsZero() && g.Lost.Before(g.End) {
		return g.Lost
	}
	return g.End
}

// byPath returns gs per path, each in grant order.
func byPath(gs []LockGrant) map[string][]LockGrant {
	m := map[string][]LockGrant{}
	for _, g := range gs {
		m[g.Path] = append(m[g.Path], g)
	}
	for _, q := range m {
		slices.SortStableFunc(q, func(a, b LockGrant) int { return a.Granted.Compare(b.Granted) })
	}
	return m
}

// at formats t as an offset from the log's start.
// origin says, for a report, the wall clock time its +times count from,
// which lines them up with the members' logs.
func (l *LockLog) origin() string {
	return " (times from " + l.start.UTC().Format("15:04:05.000") + " UTC)"
}

func (l *LockLog) at(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmt.Sprintf("+%.3fs", t.Sub(l.start).Seconds())
}

func (l *LockLog) describe(g LockGrant) string {
	s := fmt.Sprintf("client %d (session %s on %s, token %d, asked %s, granted %s, ended %s",
		g.Client, g.Session, g.Member, g.Token, l.at(g.Asked), l.at(g.Granted), l.at(g.End))
	if !g.Deadline.IsZero() {
		s += ", session deadline then " + l.at(g.Deadline)
	}
	if !g.Lost.IsZero() {
		s += fmt.Sprintf(", lost %s: %s", l.at(g.Lost), g.LostCause)
		if !g.LostDeadline.IsZero() {
			s += ", session deadline then " + l.at(g.LostDeadline)
		}
	}
	return s + ")"
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
