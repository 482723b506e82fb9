package fence

import (
	"errors"
	"fmt"
	"sync"
)

// ErrStale matches (errors.Is) every refusal of a token lower than the
// highest one the resource has seen: the writer's lock was granted to
// someone else since. The error itself is a *StaleError naming both tokens.
var ErrStale = errors.New("fence: stale token")

// ErrNoToken is returned for token 0. Arbor never grants it (a token is
// the czxid of a lock node, and every write has a zxid of at least 1), so
// 0 means the caller forgot to pass the token of its lock.
var ErrNoToken = errors.New("fence: token 0 is no token: pass the token of the lock grant")

// StaleError is the refusal of Token because Highest has been seen.
type StaleError struct {
	Resource string // as given to Guards.Guard; "" for a lone Guard and for Exec
	Token    uint64 // the token refused
	Highest  uint64 // the highest token seen, greater than Token
}

func (e *StaleError) Error() string {
	if e.Resource == "" {
		return fmt.Sprintf("fence: stale token %d: token %d has been seen", e.Token, e.Highest)
	}
	return fmt.Sprintf("fence: stale token %d for %q: token %d has been seen", e.Token, e.Resource, e.Highest)
}

// Is makes errors.Is(err, ErrStale) hold.
func (e *StaleError) Is(target error) bool { return target == ErrStale }

// Guard guards one resource in memory. The zero value is ready and has seen
// no token. It is safe for concurrent use.
//
// A token is accepted when it is at least the highest seen: equal tokens
// are the same holder writing again. A Guard keeps its highest token only
// in memory: a resource that outlives its process must store the token with
// its data (see Exec for SQL), or a restarted guard accepts stale writers
// again.
type Guard struct {
	resource string // set by Guards, for errors

	mu      sync.Mutex
	highest uint64
}

// Advance records token as seen, or refuses it with a *StaleError
// (errors.Is ErrStale) when a higher one has been seen.
func (g *Guard) Advance(token uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.advanceLocked(token)
}

func (g *Guard) advanceLocked(token uint64) error {
	if token == 0 {
		return ErrNoToken
	}
	if token < g.highest {
		return &StaleError{Resource: g.resource, Token: token, Highest: g.highest}
	}
	g.highest = token
	return nil
}

// Do runs fn if token is accepted, holding the guard while fn runs, so that
// no higher token can be accepted between the check and fn's write: Do
// calls on one Guard run one at a time. It returns Advance's refusal (fn
// is not run) or fn's error.
//
// The token counts as seen even when fn fails: a holder presenting it
// proves that every lower token is stale, whatever became of its write.
func (g *Guard) Do(token uint64, fn func() error) error {
	if fn == nil {
		return errors.New("fence: Do needs a function to run")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.advanceLocked(token); err != nil {
		return err
	}
	return fn()
}

// Highest returns the highest token seen, 0 for none.
func (g *Guard) Highest() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.highest
}

// Guards is a Guard per resource name, made on first use. The zero value
// is ready; it is safe for concurrent use. A name's guard is kept for the
// life of the Guards: dropping it would forget its highest token.
type Guards struct {
	mu sync.Mutex
	m  map[string]*Guard
}

// Guard returns the guard of resource, the same one for every call with
// the same name.
func (gs *Guards) Guard(resource string) *Guard {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g, ok := gs.m[resource]
	if !ok {
		if gs.m == nil {
			gs.m = make(map[string]*Guard)
		}
		g = &Guard{resource: resource}
		gs.m[resource] = g
	}
	return g
}
