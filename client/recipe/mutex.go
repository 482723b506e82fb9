package recipe

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/arbor-db/arbor/client"
)

// ErrNotLocked is returned by Unlock of a Mutex (or RWMutex) this process
// does not hold.
var ErrNotLocked = errors.New("recipe: not locked")

// held is one grant and what tells that it is lost.
type held struct {
	grant client.Grant
	lost  chan struct{}
	stop  context.CancelFunc
	done  chan struct{}
}

// hold starts watching g: lost is closed when the session's Context ends
// (jeopardy: the cluster may expire the session and grant the lock to
// another at any moment; expiry; Close) or when g's node is deleted (an
// operator broke the lock). The Context is taken after the grant arrived:
// a session that recovered from jeopardy before it was still alive then,
// and so was its node.
func hold(c *client.Client, g client.Grant) *held {
	h := &held{grant: g, lost: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(c.Context())
	h.stop = cancel
	go func() {
		defer close(h.done)
		defer close(h.lost)
		for ctx.Err() == nil {
			var ev <-chan client.WatchEvent
			st, err := c.Exists(ctx, g.Node, client.WatchOnce(&ev))
			if err != nil {
				// Reads are resent across reconnects; what fails here is
				// the session's end or a refusal, and a grant nobody can
				// vouch for is lost.
				return
			}
			if st == nil || st.Czxid != g.Token {
				return
			}
			select {
			case <-ev:
			case <-ctx.Done():
			}
		}
	}()
	return h
}

// release stops watching; it reports whether the grant was lost first.
func (h *held) release() (lost bool) {
	select {
	case <-h.lost:
		lost = true
	default:
	}
	h.stop()
	<-h.done
	return lost
}

// acquire takes a lock (or candidacy) with take, asking again after an
// indeterminate failure (a lost connection, a proposal that timed out):
// the session has at most one place per path, so asking again goes on with
// the same place. A try (wait_ms 0) is not asked again: its TIMEOUT means
// the lock is held.
func acquire(ctx context.Context, c *client.Client, try bool, take func(context.Context) (client.Grant, error)) (client.Grant, error) {
	for {
		g, err := take(ctx)
		if err == nil || !client.IsIndeterminate(err) || ctx.Err() != nil || c.Expired() {
			return g, err
		}
		if try && errors.Is(err, client.ErrTimeout) {
			return g, err
		}
		// A cluster without a leader answers at once; wait a little.
		select {
		case <-time.After(retryPause):
		case <-ctx.Done():
			return g, ctx.Err()
		}
	}
}

// retryPause spaces the attempts of acquire.
const retryPause = 50 * time.Millisecond

// Mutex is a distributed exclusive lock on a path, held by this Client's
// session. It is also exclusive within the process: one goroutine at a time
// holds a Mutex value. Use one Mutex per path per Client (two values on the
// same path and Client share the session's one place in the queue).
//
// Lock hands out a fencing token (Token). A holder can lose the lock without
// calling Unlock: its session may expire while it is paused or cut off.
// Lost is closed as soon as that may have happened, before the cluster can
// grant the lock to anyone else; stop acting on the lock then, and pass
// Token to the resource the lock guards (package fence) so that a write
// that comes too late anyway is refused.
type Mutex struct {
	c    *client.Client
	path string
	sem  chan struct{} // one local holder

	mu sync.Mutex
	h  *held
}

// NewMutex returns the Mutex at path.
func NewMutex(c *client.Client, path string) *Mutex {
	return &Mutex{c: c, path: path, sem: make(chan struct{}, 1)}
}

// Lock blocks until the lock is held, or ctx ends (then the request is
// withdrawn).
func (m *Mutex) Lock(ctx context.Context) error {
	return m.lock(ctx)
}

// TryLock takes the lock if it is free right now, without queueing. It
// reports false when another holds it.
func (m *Mutex) TryLock(ctx context.Context) (bool, error) {
	err := m.lock(ctx, client.WaitAtMost(0))
	if errors.Is(err, client.ErrTimeout) {
		return false, nil
	}
	return err == nil, err
}

func (m *Mutex) lock(ctx context.Context, opts ...client.LockOption) error {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	g, err := acquire(ctx, m.c, len(opts) > 0, func(ctx context.Context) (client.Grant, error) { return m.c.Lock(ctx, m.path, opts...) })
	if err != nil {
		<-m.sem
		return err
	}
	m.mu.Lock()
	m.h = hold(m.c, g)
	m.mu.Unlock()
	return nil
}

// Unlock releases the lock. It fails with ErrNotLocked when this Mutex is
// not held; when the lock was lost already it still cleans up and returns
// client.ErrNotHeld.
func (m *Mutex) Unlock(ctx context.Context) error {
	m.mu.Lock()
	h := m.h
	m.h = nil
	m.mu.Unlock()
	if h == nil {
		return ErrNotLocked
	}
	defer func() { <-m.sem }()
	h.release()
	return m.c.Unlock(ctx, m.path)
}

// Token returns the fencing token of the held lock (0 when not held).
func (m *Mutex) Token() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h == nil {
		return 0
	}
	return m.h.grant.Token
}

// Lost returns a channel closed when the held lock may be lost (see
// Mutex). It is nil when the Mutex is not held.
func (m *Mutex) Lost() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h == nil {
		return nil
	}
	return m.h.lost
}

// maxReaders bounds the local readers of an RWMutex.
const maxReaders = 1 << 30

// RWMutex is a distributed readers-writer lock on a path: many readers (of
// any processes) hold it together, a writer alone. A writer that waits
// keeps later readers waiting (readers do not starve writers), in the
// cluster and within the process. Within the process the readers of one
// RWMutex share the session's one read lock: the first RLock takes it, the
// last RUnlock releases it. Token and Lost work as Mutex's.
type RWMutex struct {
	c     *client.Client
	path  string
	local *semaphore.Weighted // readers 1 each, the writer all

	mu      sync.Mutex
	turn    chan struct{} // serializes taking and releasing the remote lock
	readers int
	h       *held
}

// NewRWMutex returns the RWMutex at path.
func NewRWMutex(c *client.Client, path string) *RWMutex {
	return &RWMutex{c: c, path: path, local: semaphore.NewWeighted(maxReaders), turn: make(chan struct{}, 1)}
}

// Lock takes the write lock.
func (rw *RWMutex) Lock(ctx context.Context) error {
	if err := rw.local.Acquire(ctx, maxReaders); err != nil {
		return err
	}
	g, err := acquire(ctx, rw.c, false, func(ctx context.Context) (client.Grant, error) { return rw.c.Lock(ctx, rw.path) })
	if err != nil {
		rw.local.Release(maxReaders)
		return err
	}
	rw.mu.Lock()
	rw.h = hold(rw.c, g)
	rw.mu.Unlock()
	return nil
}

// Unlock releases the write lock.
func (rw *RWMutex) Unlock(ctx context.Context) error {
	rw.mu.Lock()
	h := rw.h
	if h == nil || rw.readers > 0 {
		rw.mu.Unlock()
		return ErrNotLocked
	}
	rw.h = nil
	rw.mu.Unlock()
	defer rw.local.Release(maxReaders)
	h.release()
	return rw.c.Unlock(ctx, rw.path)
}

// RLock takes a read lock.
func (rw *RWMutex) RLock(ctx context.Context) error {
	if err := rw.local.Acquire(ctx, 1); err != nil {
		return err
	}
	select {
	case rw.turn <- struct{}{}:
	case <-ctx.Done():
		rw.local.Release(1)
		return ctx.Err()
	}
	defer func() { <-rw.turn }()
	rw.mu.Lock()
	first := rw.readers == 0
	rw.mu.Unlock()
	if first {
		g, err := acquire(ctx, rw.c, false, func(ctx context.Context) (client.Grant, error) {
			return rw.c.Lock(ctx, rw.path, client.Shared())
		})
		if err != nil {
			rw.local.Release(1)
			return err
		}
		rw.mu.Lock()
		rw.h = hold(rw.c, g)
		rw.mu.Unlock()
	}
	rw.mu.Lock()
	rw.readers++
	rw.mu.Unlock()
	return nil
}

// RUnlock releases a read lock; the last local reader releases the
// session's.
func (rw *RWMutex) RUnlock(ctx context.Context) error {
	rw.turn <- struct{}{}
	defer func() { <-rw.turn }()
	rw.mu.Lock()
	if rw.readers == 0 {
		rw.mu.Unlock()
		return ErrNotLocked
	}
	rw.readers--
	var h *held
	if rw.readers == 0 {
		h, rw.h = rw.h, nil
	}
	rw.mu.Unlock()
	defer rw.local.Release(1)
	if h == nil {
		return nil
	}
	h.release()
	return rw.c.Unlock(ctx, rw.path)
}

// Token returns the fencing token of the held lock (read or write; 0 when
// not held).
func (rw *RWMutex) Token() uint64 {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.h == nil {
		return 0
	}
	return rw.h.grant.Token
}

// Lost returns a channel closed when the held lock may be lost; nil when
// not held.
func (rw *RWMutex) Lost() <-chan struct{} {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.h == nil {
		return nil
	}
	return rw.h.lost
}
