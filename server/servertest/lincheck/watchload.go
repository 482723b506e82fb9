package lincheck

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"sync"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/recipe"
)

// The watch workload: a writer sets the nodes of one subtree while three
// recursive watchers, each preferring another member, follow it through
// the nemesis's crashes and partitions, their own client's resumes, and
// now and then a new session of their own that watches again since the
// last zxid it saw, sometimes after a pause long enough for that zxid to
// fall out of the members' history (a resync). A recipe.TreeCache of the
// subtree, on one more session, follows it too (cachecheck.go).
const (
	// WatchRoot is the subtree the watch workload writes and watches.
	WatchRoot     = "/w"
	watchNodes    = 6
	watchWatchers = 3
)

func watchNode(i int) string { return fmt.Sprintf("%s/%d", WatchRoot, i) }

// SetUpWatchTree creates the workload's subtree (WatchRoot and its nodes,
// all empty) and returns the zxid from which it is WatchInitial().
func SetUpWatchTree(ctx context.Context, c *client.Client) (uint64, error) {
	for _, p := range append([]string{WatchRoot}, watchNodePaths()...) {
		if _, _, err := c.Create(ctx, p, nil); err != nil {
			return 0, fmt.Errorf("lincheck: create %s: %w", p, err)
		}
	}
	if err := c.Sync(ctx, "/"); err != nil {
		return 0, fmt.Errorf("lincheck: sync: %w", err)
	}
	return c.LastZxid(), nil
}

func watchNodePaths() []string {
	out := make([]string, watchNodes)
	for i := range out {
		out[i] = watchNode(i)
	}
	return out
}

// WatchRun is the watch workload of one run.
type WatchRun struct {
	// Log is what the writer and the watchers recorded.
	Log *WatchLog

	opTimeout time.Duration
	start     uint64 // the zxid at which the subtree was WatchInitial()
	addrs     []string
	ready     sync.WaitGroup // every watcher has registered once
	wg        sync.WaitGroup
	// The tree cache the cacher left running when the workload stopped,
	// for Check; nil if none was.
	cache *liveCache
}

// liveCache is a tree cache and the session it follows the subtree on.
type liveCache struct {
	tc *recipe.TreeCache
	c  *client.Client
}

// openCache starts a tree cache of the subtree on a new session; nil when
// either cannot be had now.
func (r *WatchRun) openCache(ctx context.Context) *liveCache {
	c, err := r.dial(ctx, watchWatchers%len(r.addrs))
	if err != nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, r.opTimeout)
	defer cancel()
	tc, err := recipe.NewTreeCache(sctx, c, WatchRoot)
	if err != nil {
		closeSoon(c)
		return nil
	}
	return &liveCache{tc: tc, c: c}
}

// close stops the cache and its session; nil does nothing.
func (lc *liveCache) close() {
	if lc == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_ = lc.tc.Close(cctx)
	cancel()
	closeSoon(lc.c)
}

// WatchInitial is the subtree as SetUpWatchTree leaves it.
func WatchInitial() map[string]string {
	m := map[string]string{WatchRoot: ""}
	for i := range watchNodes {
		m[watchNode(i)] = ""
	}
	return m
}

// StartWatchRun starts the watchers and, once they have registered, the
// writer, on the members at addrs; they run until ctx ends. The subtree was
// WatchInitial() at zxid start, and every watch replays from there.
// opTimeout bounds one request.
func StartWatchRun(ctx context.Context, addrs []string, start uint64, seed int64, opTimeout time.Duration) *WatchRun {
	r := &WatchRun{start: start, Log: NewWatchLog(WatchInitial()), addrs: addrs, opTimeout: opTimeout}
	r.ready.Add(watchWatchers + 1)
	for w := range watchWatchers {
		rng := rand.New(rand.NewSource(seed + int64(w) + 1))
		r.wg.Go(func() { r.watcher(ctx, w, rng) })
	}
	r.wg.Go(func() { r.cacher(ctx) })
	r.wg.Go(func() {
		r.ready.Wait()
		r.writer(ctx)
	})
	return r
}

func (r *WatchRun) dial(ctx context.Context, first int) (*client.Client, error) {
	eps := append(append([]string{}, r.addrs[first:]...), r.addrs[:first]...)
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return client.Dial(dctx, client.Config{Endpoints: eps, SessionTimeout: 5 * time.Second,
		InOrder: true, DialTimeout: r.opTimeout, Logger: slog.New(slog.DiscardHandler)})
}

// writer sets the subtree's nodes, recording what was acknowledged.
func (r *WatchRun) writer(ctx context.Context) {
	var c *client.Client
	defer func() {
		if c != nil {
			closeSoon(c)
		}
	}()
	for seq := 0; ctx.Err() == nil; seq++ {
		if c == nil {
			var err error
			if c, err = r.dial(ctx, seq%len(r.addrs)); err != nil {
				sleepUntil(ctx, time.Now().Add(50*time.Millisecond))
				continue
			}
		}
		if !r.set(ctx, c, watchNode(seq%watchNodes), fmt.Sprintf("d%d", seq)) {
			closeSoon(c)
			c = nil
		}
		sleepUntil(ctx, time.Now().Add(3*time.Millisecond))
	}
}

// set writes data to path and records it if acknowledged; false means the
// client should be replaced.
func (r *WatchRun) set(ctx context.Context, c *client.Client, path, data string) bool {
	octx, cancel := context.WithTimeout(ctx, r.opTimeout)
	defer cancel()
	st, err := c.Set(octx, path, []byte(data), client.AnyVersion)
	if err != nil {
		return false
	}
	r.Log.Acked(AckedChange{Path: path, Data: data, Zxid: st.Mzxid})
	return true
}

// watcher follows the subtree until ctx ends.
func (r *WatchRun) watcher(ctx context.Context, id int, rng *rand.Rand) {
	first := true
	for ctx.Err() == nil {
		c, err := r.dial(ctx, id%len(r.addrs))
		if err != nil {
			sleepUntil(ctx, time.Now().Add(50*time.Millisecond))
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, r.opTimeout)
		w, err := c.Watch(wctx, WatchRoot, client.Recursive(), client.Since(r.lastSeen(id)))
		cancel()
		if err != nil {
			closeSoon(c)
			continue
		}
		if first {
			first = false
			r.ready.Done()
		}
		// Follow for a while, then start over on a new session, sometimes
		// after a pause.
		until := time.After(time.Duration(500+rng.Intn(2500)) * time.Millisecond)
	follow:
		for {
			select {
			case ev, ok := <-w.Events():
				if !ok {
					break follow // overflow or a lost session: watch again since last
				}
				r.Log.Event(id, Logged(ev))
			case <-until:
				break follow
			case <-ctx.Done():
				break follow
			}
		}
		closeSoon(c)
		if rng.Intn(3) == 0 {
			sleepUntil(ctx, time.Now().Add(time.Duration(rng.Intn(1200))*time.Millisecond))
		}
	}
	if first {
		r.ready.Done()
	}
}

// cacher keeps a tree cache of the subtree and records what it shows each
// time its zxid moves. A cache ends with its session (a partition longer
// than the session timeout): then a new one on a new session. The last one
// stays open for Check.
func (r *WatchRun) cacher(ctx context.Context) {
	first := true
	defer func() {
		if first {
			r.ready.Done()
		}
	}()
	for ctx.Err() == nil {
		lc := r.openCache(ctx)
		if lc == nil {
			sleepUntil(ctx, time.Now().Add(50*time.Millisecond))
			continue
		}
		if first {
			first = false
			r.ready.Done()
		}
		r.recordView(lc.tc)
	follow:
		for {
			select {
			case _, ok := <-lc.tc.Changes():
				if !ok {
					break follow
				}
				r.recordView(lc.tc)
			case <-ctx.Done():
				r.cache = lc
				return
			}
		}
		lc.close()
	}
}

// recordView records what tc shows now.
func (r *WatchRun) recordView(tc *recipe.TreeCache) {
	r.Log.CacheView(cacheView(tc))
}

func cacheView(tc *recipe.TreeCache) CacheView {
	nodes, z := tc.Snapshot()
	v := CacheView{Zxid: z, Nodes: make(map[string]string, len(nodes))}
	for _, n := range nodes {
		v.Nodes[n.Path] = string(n.Data)
	}
	return v
}

// Logged is ev as a WatchLog records it.
func Logged(ev client.WatchEvent) WatchEvent {
	e := WatchEvent{Type: ev.Type.String(), Path: ev.Path, Zxid: ev.Zxid, Data: string(ev.Data)}
	if ev.Type == client.EventResync {
		e.Nodes = map[string]string{}
		for _, n := range ev.Nodes {
			e.Nodes[n.Path] = string(n.Data)
		}
	}
	return e
}

func closeSoon(c *client.Client) {
	cctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_ = c.Close(cctx)
}

// Check runs after the workload stopped and the cluster healed: one last
// acknowledged write, every watcher made to catch up to it, then the log
// checked against the subtree as it stands.
func (r *WatchRun) Check(ctx context.Context) []error {
	r.wg.Wait()
	c, err := r.dial(ctx, 0)
	if err != nil {
		return []error{fmt.Errorf("watch check: dial: %w", err)}
	}
	defer closeSoon(c)
	var marker uint64
	for marker == 0 {
		octx, cancel := context.WithTimeout(ctx, r.opTimeout)
		st, err := c.Set(octx, watchNode(0), []byte("end"), client.AnyVersion)
		cancel()
		if err == nil {
			marker = st.Mzxid
			r.Log.Acked(AckedChange{Path: watchNode(0), Data: "end", Zxid: marker})
		} else if ctx.Err() != nil {
			return []error{fmt.Errorf("watch check: the last write: %w", err)}
		}
	}
	// Each watcher once more, since what it last saw, until the marker.
	var wg sync.WaitGroup
	errs := make([]error, watchWatchers)
	for id := range watchWatchers {
		wg.Go(func() { errs[id] = r.catchUp(ctx, id, marker) })
	}
	wg.Wait()
	last, cacheErr := r.syncCache(ctx)
	if cacheErr != nil {
		errs = append(errs, cacheErr)
	}
	final := map[string]string{}
	for p := range WatchInitial() {
		data, _, err := c.Get(ctx, p)
		if err != nil {
			return []error{fmt.Errorf("watch check: read %s: %w", p, err)}
		}
		final[p] = string(data)
	}
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	out = append(out, CheckWatch(r.Log, final)...)
	return append(out, CheckCache(r.Log, last, marker, final)...)
}

// syncCache syncs the tree cache the workload left running (a new one if
// it had ended), after the last write, and returns what it shows then (nil
// with the error when it cannot).
func (r *WatchRun) syncCache(ctx context.Context) (*CacheView, error) {
	lc := r.cache
	defer func() { lc.close() }()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		if lc == nil {
			// Its session ended: a new one, which must load the subtree
			// as it stands.
			if lc = r.openCache(ctx); lc == nil {
				sleepUntil(ctx, time.Now().Add(50*time.Millisecond))
				continue
			}
		}
		sctx, cancel := context.WithTimeout(ctx, r.opTimeout)
		err := lc.tc.Sync(sctx)
		cancel()
		if err == nil {
			v := cacheView(lc.tc)
			r.Log.CacheView(v)
			return &v, nil
		}
		if lc.tc.Err() != nil {
			lc.close()
			lc = nil
		}
	}
	return nil, fmt.Errorf("%w: tree cache: not synced within 20s of healing", ErrViolation)
}

// catchUp watches again since the last event watcher id received, until
// it has seen zxid upto.
func (r *WatchRun) catchUp(ctx context.Context, id int, upto uint64) error {
	deadline := time.Now().Add(20 * time.Second)
	for !r.Log.Seen(id, upto) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: watcher %d did not reach zxid %d within 20s of healing", ErrViolation, id, upto)
		}
		c, err := r.dial(ctx, id%len(r.addrs))
		if err != nil {
			continue
		}
		w, err := c.Watch(ctx, WatchRoot, client.Recursive(), client.Since(r.lastSeen(id)))
		if err == nil {
			timeout := time.After(5 * time.Second)
		loop:
			for !r.Log.Seen(id, upto) {
				select {
				case ev, ok := <-w.Events():
					if !ok {
						break loop
					}
					r.Log.Event(id, Logged(ev))
				case <-timeout:
					break loop
				}
			}
		}
		closeSoon(c)
	}
	return nil
}

// lastSeen is the zxid a new watch of watcher id starts after.
func (r *WatchRun) lastSeen(id int) uint64 { return max(r.Log.Last(id), r.start) }

// sleepUntil waits until t or the end of ctx.
func sleepUntil(ctx context.Context, t time.Time) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(t)):
	}
}
