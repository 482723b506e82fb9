package recipe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/arbor-db/arbor/client"
)

// treeWatchBuffer is the event buffer of a TreeCache's watch; a variable so
// that tests can make it overflow.
var treeWatchBuffer = client.DefaultWatchBuffer

// TreeCache is a local copy of a subtree, kept from one recursive watch.
// Its reads never leave the process and always show the subtree exactly as
// it stood at one zxid (Zxid): the events of one zxid (a multi, a recursive
// delete) are applied together, never half.
//
// The cache knows a zxid is complete once an event of a later zxid
// arrives, or once Watcher.Sync answers at or after it (a read on the
// watch's own connection, sent after the watch was registered there: the
// member sends every event up to an answer's zxid before the answer). So
// after a burst of changes it syncs once to publish the last zxid of the
// burst, also across reconnections.
type TreeCache struct {
	c    *client.Client
	root string

	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	done    chan struct{} // closed when run returns
	changes chan uint64
	syncs   chan uint64 // zxids Sync read at, for run
	wg      sync.WaitGroup

	mu       sync.RWMutex
	st       *treeState
	zxid     uint64
	advanced chan struct{} // closed and replaced when zxid grows
	w        *client.Watcher
	err      error
}

// NewTreeCache starts a cache of the subtree under root (which need not
// exist yet). When it returns, the cache holds the whole subtree at some
// zxid. Call Close when done.
func NewTreeCache(ctx context.Context, c *client.Client, root string) (*TreeCache, error) {
	if c == nil {
		return nil, fmt.Errorf("recipe: NewTreeCache: nil client: %w", client.ErrBadRequest)
	}
	if err := checkRecipePath(root); err != nil {
		return nil, fmt.Errorf("recipe: NewTreeCache: %w", err)
	}
	tc := &TreeCache{c: c, root: root, done: make(chan struct{}), changes: make(chan uint64, 1),
		syncs: make(chan uint64), advanced: make(chan struct{})}
	tc.ctx, tc.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r, err := tc.start(ctx)
	if err != nil {
		tc.cancel()
		return nil, fmt.Errorf("recipe: caching %s: %w", root, err)
	}
	go tc.run(r)
	return tc, nil
}

// start sets the watch, reads the subtree and catches up with the events
// up to a read after it, again from scratch if the watch overflows
// meanwhile.
func (tc *TreeCache) start(ctx context.Context) (*runState, error) {
	for {
		// The watch first: its live events are the changes after its
		// answer's zxid A, and every read below is answered at A or later.
		w, err := tc.c.Watch(ctx, tc.root, client.Recursive(), client.WatchBuffer(treeWatchBuffer))
		if err != nil {
			return nil, err
		}
		st, last, err := loadTree(ctx, tc.c, tc.root)
		var z uint64
		if err == nil {
			z, err = w.Sync(ctx)
		}
		if errors.Is(err, client.ErrWatchOverflow) {
			continue // from scratch, below
		}
		if err != nil {
			_ = w.Close(ctx)
			return nil, err
		}
		r := &runState{w: w, st: st}
		if !r.drain() {
			if !errors.Is(w.Err(), client.ErrWatchOverflow) {
				return nil, w.Err()
			}
			continue
		}
		// z >= last: a linearizable read sent after the last answer. So
		// every event the state may already hold has come (drain), and
		// once they are applied the state holds changes by zxid alone.
		r.complete(max(z, last))
		r.settle()
		r.st.base, r.changed = nil, false
		tc.st, tc.zxid, tc.w = r.st, r.zxid, w
		return r, nil
	}
}

// confirm returns a zxid up to which every event of the cache's watch has
// reached the watcher (Watcher.Sync; see TreeCache). A watch that
// overflowed meanwhile is replaced by run: confirm then syncs the new one.
func (tc *TreeCache) confirm(ctx context.Context) (uint64, error) {
	for {
		tc.mu.RLock()
		w := tc.w
		tc.mu.RUnlock()
		z, err := w.Sync(ctx)
		if !errors.Is(err, client.ErrWatchOverflow) {
			return z, err
		}
		select {
		case <-tc.done:
			return 0, tc.Err()
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond): // run replaces the watch
		}
	}
}

// runState is what run works on: the watch, the state and the events
// received but not known complete yet. Only run's goroutine uses it; the
// state is changed under TreeCache.mu.
type runState struct {
	w       *client.Watcher
	st      *treeState
	pending []client.WatchEvent // zxid order, all after zxid
	ready   []client.WatchEvent // complete, not applied yet
	zxid    uint64              // the state is exact at zxid once ready is applied
	resync  *treeState          // a resync received, to replace st
	changed bool                // what ready or resync brings changes the state
}

// settle applies the complete events (after a resync received, to it).
// Under TreeCache.mu once the cache is shared.
func (r *runState) settle() {
	if r.resync != nil {
		r.st, r.resync = r.resync, nil
	}
	for _, ev := range r.ready {
		r.st.apply(ev)
	}
	r.ready = r.ready[:0]
}

// take takes one event: a resync replaces everything before it; an event
// of a later zxid completes those pending.
func (r *runState) take(ev client.WatchEvent) {
	if ev.Type == client.EventResync {
		r.resync = fromResync(r.st.root, ev.Nodes)
		r.pending, r.ready, r.zxid, r.changed = nil, nil, ev.Zxid, true
		return
	}
	if n := len(r.pending); n > 0 && r.pending[n-1].Zxid < ev.Zxid {
		r.ready, r.pending = append(r.ready, r.pending...), r.pending[:0:0]
		r.zxid = max(r.zxid, r.ready[len(r.ready)-1].Zxid)
		r.changed = true
	}
	r.pending = append(r.pending, ev)
}

// complete marks every pending event up to z complete, and the state exact
// at z.
func (r *runState) complete(z uint64) {
	i := 0
	for i < len(r.pending) && (r.pending[i].Zxid < z || r.pending[i].Zxid == z && !bugCacheSyncEdge) {
		i++
	}
	if i > 0 {
		r.ready, r.changed = append(r.ready, r.pending[:i]...), true
		r.pending = append(r.pending[:0:0], r.pending[i:]...)
	}
	r.zxid = max(r.zxid, z)
}

// drain takes the events already waiting; false when the watch ended.
func (r *runState) drain() bool {
	for {
		select {
		case ev, ok := <-r.w.Events():
			if !ok {
				return false
			}
			r.take(ev)
		default:
			return true
		}
	}
}

// run keeps the cache until Close or the end of the watch. It confirms a
// pending zxid (one read at a time, on its own goroutine) only when no
// event is waiting, so a steady stream costs no reads.
func (tc *TreeCache) run(r *runState) {
	defer close(tc.done)
	defer close(tc.changes)
	defer tc.wg.Wait()
	confirmed := make(chan uint64, 1)
	// stalled: the last confirming read failed; the next event or Sync
	// tries again, rather than a loop of failing reads.
	confirming, stalled := false, false
	for {
		if len(r.pending) > 0 && !confirming && !stalled {
			confirming = true
			w := r.w
			tc.wg.Go(func() {
				z, err := w.Sync(tc.ctx)
				if err != nil {
					z = 0 // the next event or Sync tries again
				}
				confirmed <- z
			})
		}
		select {
		case <-tc.ctx.Done():
			tc.end(client.ErrWatchClosed)
			return
		case z := <-confirmed:
			confirming, stalled = false, z == 0
			if !r.drain() {
				if !tc.rewatch(r) {
					return
				}
				continue
			}
			r.complete(z)
		case z := <-tc.syncs:
			stalled = false
			if !r.drain() {
				if !tc.rewatch(r) {
					return
				}
				continue
			}
			r.complete(z)
		case ev, ok := <-r.w.Events():
			if !ok {
				if !tc.rewatch(r) {
					return
				}
				continue
			}
			r.take(ev)
			stalled = false
			if !r.drain() {
				if !tc.rewatch(r) {
					return
				}
				continue
			}
		}
		tc.publish(r)
	}
}

// publish applies the complete events under the lock, so that readers see
// all of a zxid or none of it, and tells Changes.
func (tc *TreeCache) publish(r *runState) {
	tc.mu.Lock()
	r.settle()
	tc.st = r.st
	advanced := r.zxid > tc.zxid
	if advanced {
		tc.zxid = r.zxid
		close(tc.advanced)
		tc.advanced = make(chan struct{})
	}
	z := tc.zxid
	tc.mu.Unlock()
	if r.changed {
		r.changed = false
		select {
		case <-tc.changes:
		default:
		}
		tc.changes <- z
	}
}

// rewatch replaces a watch that overflowed with one since the zxid the
// state is exact at, which goes on without a gap (or resyncs). The events
// pending are dropped: the new watch sends them again. It reports false,
// having ended the cache, when the watch ended for another reason or
// cannot be set again.
func (tc *TreeCache) rewatch(r *runState) bool {
	err := r.w.Err()
	if errors.Is(err, client.ErrWatchOverflow) {
		tc.publish(r)
		r.pending = nil
		var w *client.Watcher
		w, err = tc.c.Watch(tc.ctx, tc.root, client.Recursive(), client.Since(r.zxid), client.WatchBuffer(treeWatchBuffer))
		if err == nil {
			tc.mu.Lock()
			tc.w, r.w = w, w
			tc.mu.Unlock()
			return true
		}
	}
	if tc.ctx.Err() != nil {
		err = client.ErrWatchClosed
	}
	tc.end(err)
	return false
}

func (tc *TreeCache) end(err error) {
	tc.mu.Lock()
	tc.err = err
	tc.mu.Unlock()
}

// Get returns the node at path as the cache holds it, and whether it
// exists. Do not modify its Data.
func (tc *TreeCache) Get(path string) (TreeNode, bool) {
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	return tc.st.node(path)
}

// Children returns the names of path's children, sorted, and whether
// path exists.
func (tc *TreeCache) Children(path string) ([]string, bool) {
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	return tc.st.children(path)
}

// Zxid returns the zxid the cache is exact at: the subtree as it stood
// right after the change at that zxid.
func (tc *TreeCache) Zxid() uint64 {
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	return tc.zxid
}

// Snapshot returns the whole subtree, parents first and siblings by name
// (empty when the root does not exist), and the zxid it is exact at. Do not
// modify the Data.
func (tc *TreeCache) Snapshot() ([]TreeNode, uint64) {
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	return tc.st.walk(tc.root, nil), tc.zxid
}

// Changes returns a channel that gets the cache's zxid after every change
// of its content. It holds only the newest: a reader that falls behind
// skips zxids but always gets the latest, and the cache never waits for
// it. Read the cache itself for what changed. It is closed when the cache
// ends (Close, or see Err).
func (tc *TreeCache) Changes() <-chan uint64 { return tc.changes }

// Sync waits until the cache holds every change committed before Sync
// was called: after it, Zxid is at least that of a linearizable read.
func (tc *TreeCache) Sync(ctx context.Context) error {
	z, err := tc.confirm(ctx)
	if err != nil {
		return fmt.Errorf("recipe: syncing cache of %s: %w", tc.root, err)
	}
	select {
	case tc.syncs <- z:
	case <-tc.done:
		return fmt.Errorf("recipe: syncing cache of %s: %w", tc.root, tc.Err())
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		tc.mu.RLock()
		cur, advanced := tc.zxid, tc.advanced
		tc.mu.RUnlock()
		if cur >= z {
			return nil
		}
		select {
		case <-advanced:
		case <-tc.done:
			return fmt.Errorf("recipe: syncing cache of %s: %w", tc.root, tc.Err())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Err returns why the cache stopped following the subtree, or nil while
// it does: client.ErrWatchClosed after Close, or the end of the session.
// The content stays readable, as of Zxid.
func (tc *TreeCache) Err() error {
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	return tc.err
}

// Close stops the cache and removes its watch; Changes is closed.
func (tc *TreeCache) Close(ctx context.Context) error {
	tc.cancel()
	<-tc.done
	tc.mu.RLock()
	w := tc.w
	tc.mu.RUnlock()
	err := w.Close(ctx)
	if errors.Is(err, client.ErrClosed) || errors.Is(err, client.ErrSessionExpired) {
		return nil // the watch went with the session
	}
	return err
}
