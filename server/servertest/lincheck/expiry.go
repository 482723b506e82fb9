package lincheck

import (
	"fmt"
	"sync"
	"time"
)

// SessionLog records sessions that a workload abandons without closing
// them, and what was observed of them afterwards, for CheckExpiry. It is
// safe for concurrent use.
type SessionLog struct {
	mu        sync.Mutex
	sessions  map[string]*Abandoned
	probes    []Probe
	sightings []Sighting
}

// Abandoned is a session whose client vanished (no close).
type Abandoned struct {
	Session, Secret string
	Timeout         time.Duration // as the server granted it
	Hello           time.Time     // just before the hello was sent
	Path            string        // its ephemeral node
	Created         time.Time     // the ephemeral's create returned
}

// Probe is a resume attempt of an abandoned session: Alive when the member
// resumed it, not Alive when it answered SESSION_EXPIRED.
type Probe struct {
	Session      string
	Call, Return time.Time
	Alive        bool
}

// Sighting is a linearizable exists of an abandoned session's ephemeral.
type Sighting struct {
	Session      string
	Call, Return time.Time
	Exists       bool
}

// NewSessionLog returns an empty log.
func NewSessionLog() *SessionLog { return &SessionLog{sessions: map[string]*Abandoned{}} }

// Abandon records an abandoned session.
func (l *SessionLog) Abandon(a Abandoned) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sessions[a.Session] = &a
}

// Probe records a resume attempt.
func (l *SessionLog) Probe(p Probe) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.probes = append(l.probes, p)
}

// Sight records a linearizable exists of an abandoned session's ephemeral.
func (l *SessionLog) Sight(s Sighting) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sightings = append(l.sightings, s)
}

// Sessions returns the abandoned sessions.
func (l *SessionLog) Sessions() []Abandoned {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Abandoned, 0, len(l.sessions))
	for _, a := range l.sessions {
		out = append(out, *a)
	}
	return out
}

// Random picks an abandoned session with r (for probing), or false.
func (l *SessionLog) Random(r func(int) int) (Abandoned, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.sessions) == 0 {
		return Abandoned{}, false
	}
	i := r(len(l.sessions))
	for _, a := range l.sessions {
		if i == 0 {
			return *a, true
		}
		i--
	}
	return Abandoned{}, false
}

// Len returns the numbers of abandoned sessions, probes and sightings.
func (l *SessionLog) Len() (sessions, probes, sightings int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sessions), len(l.probes), len(l.sightings)
}

// CheckExpiry reports every observation that breaks the session contract:
//   - an ephemeral found gone before its session's timeout had run from its
//     hello (the cluster renews a session at least at its creation, and a
//     new leader only ever extends deadlines);
//   - an ephemeral seen after a resume of its session answered
//     SESSION_EXPIRED (a session and its ephemerals end in one step);
//   - an ephemeral found gone before a resume of its session succeeded (the
//     session was alive, so its ephemerals were too).
func CheckExpiry(l *SessionLog) []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, s := range l.sightings {
		a := l.sessions[s.Session]
		if a == nil || s.Exists || !s.Call.After(a.Created) {
			continue
		}
		if s.Return.Before(a.Hello.Add(a.Timeout)) {
			errs = append(errs, fmt.Errorf("%w: ephemeral %s of session %s gone %v after its hello, inside its %v timeout",
				ErrViolation, a.Path, a.Session, s.Return.Sub(a.Hello).Round(time.Millisecond), a.Timeout))
		}
		for _, p := range l.probes {
			if p.Session == s.Session && p.Alive && s.Return.Before(p.Call) {
				errs = append(errs, fmt.Errorf("%w: ephemeral %s of session %s gone before a resume of the session succeeded",
					ErrViolation, a.Path, a.Session))
				break
			}
		}
	}
	for _, p := range l.probes {
		if p.Alive {
			continue
		}
		for _, s := range l.sightings {
			if s.Session == p.Session && s.Exists && s.Call.After(p.Return) {
				errs = append(errs, fmt.Errorf("%w: ephemeral of session %s seen after a resume answered SESSION_EXPIRED",
					ErrViolation, p.Session))
				break
			}
		}
	}
	return errs
}
