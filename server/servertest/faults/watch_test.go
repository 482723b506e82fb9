package faults

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"sync"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/server/servertest/lincheck"
)

// The watch workload: a writer sets the nodes of one subtree while three
// recursive watchers, each preferring another member, follow it through
// the nemesis's crashes and partitions, their own client's resumes, and
// now and then a new session of their own that watches again since the
// last zxid it saw, sometimes after a pause long enough for that zxid to
// fall out of the members' history (a resync).
const (
	watchRoot     = "/w"
	watchNodes    = 6
	watchWatchers = 3
	// watchHistory is the members' watch history in this suite: small, so
	// that a paused watcher falls out of it and gets a resync.
	watchHistory = 100
)

func watchNode(i int) string { return fmt.Sprintf("%s/%d", watchRoot, i) }

// watchRun is the watch workload of one seed.
type watchRun struct {
	start uint64 // the zxid at which the subtree was watchInitial()
	log   *lincheck.WatchLog
	addrs []string
	ready sync.WaitGroup // every watcher has registered once
	wg    sync.WaitGroup
}

func watchInitial() map[string]string {
	m := map[string]string{watchRoot: ""}
	for i := range watchNodes {
		m[watchNode(i)] = ""
	}
	return m
}

// startWatchRun starts the watchers and, once they have registered, the
// writer; they run until ctx ends. The subtree was watchInitial() at zxid
// start, and every watch replays from there.
func startWatchRun(ctx context.Context, addrs []string, start uint64, seed int64) *watchRun {
	r := &watchRun{start: start, log: lincheck.NewWatchLog(watchInitial()), addrs: addrs}
	r.ready.Add(watchWatchers)
	for w := range watchWatchers {
		rng := rand.New(rand.NewSource(seed + int64(w) + 1))
		r.wg.Go(func() { r.watcher(ctx, w, rng) })
	}
	r.wg.Go(func() {
		r.ready.Wait()
		r.writer(ctx)
	})
	return r
}

func (r *watchRun) dial(ctx context.Context, first int) (*client.Client, error) {
	eps := append(append([]string{}, r.addrs[first:]...), r.addrs[:first]...)
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return client.Dial(dctx, client.Config{Endpoints: eps, SessionTimeout: 5 * time.Second,
		DialTimeout: opTimeout, Logger: slog.New(slog.DiscardHandler)})
}

// writer sets the subtree's nodes, recording what was acknowledged.
func (r *watchRun) writer(ctx context.Context) {
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
func (r *watchRun) set(ctx context.Context, c *client.Client, path, data string) bool {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	st, err := c.Set(octx, path, []byte(data), client.AnyVersion)
	if err != nil {
		return false
	}
	r.log.Acked(lincheck.AckedChange{Path: path, Data: data, Zxid: st.Mzxid})
	return true
}

// watcher follows the subtree until ctx ends.
func (r *watchRun) watcher(ctx context.Context, id int, rng *rand.Rand) {
	first := true
	for ctx.Err() == nil {
		c, err := r.dial(ctx, id%len(r.addrs))
		if err != nil {
			sleepUntil(ctx, time.Now().Add(50*time.Millisecond))
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, opTimeout)
		w, err := c.Watch(wctx, watchRoot, client.Recursive(), client.Since(r.lastSeen(id)))
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
				r.log.Event(id, toLogged(ev))
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

func toLogged(ev client.WatchEvent) lincheck.WatchEvent {
	e := lincheck.WatchEvent{Type: ev.Type.String(), Path: ev.Path, Zxid: ev.Zxid, Data: string(ev.Data)}
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

// check runs after the workload stopped and the cluster healed: one last
// acknowledged write, every watcher made to catch up to it, then the log
// checked against the subtree as it stands.
func (r *watchRun) check(ctx context.Context) []error {
	r.wg.Wait()
	c, err := r.dial(ctx, 0)
	if err != nil {
		return []error{fmt.Errorf("watch check: dial: %w", err)}
	}
	defer closeSoon(c)
	var marker uint64
	for marker == 0 {
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		st, err := c.Set(octx, watchNode(0), []byte("end"), client.AnyVersion)
		cancel()
		if err == nil {
			marker = st.Mzxid
			r.log.Acked(lincheck.AckedChange{Path: watchNode(0), Data: "end", Zxid: marker})
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
	final := map[string]string{}
	for p := range watchInitial() {
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
	return append(out, lincheck.CheckWatch(r.log, final)...)
}

// catchUp watches again since the last event watcher id received, until
// it has seen zxid upto.
func (r *watchRun) catchUp(ctx context.Context, id int, upto uint64) error {
	deadline := time.Now().Add(20 * time.Second)
	for !r.log.Seen(id, upto) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: watcher %d did not reach zxid %d within 20s of healing", lincheck.ErrViolation, id, upto)
		}
		c, err := r.dial(ctx, id%len(r.addrs))
		if err != nil {
			continue
		}
		w, err := c.Watch(ctx, watchRoot, client.Recursive(), client.Since(r.lastSeen(id)))
		if err == nil {
			timeout := time.After(5 * time.Second)
		loop:
			for !r.log.Seen(id, upto) {
				select {
				case ev, ok := <-w.Events():
					if !ok {
						break loop
					}
					r.log.Event(id, toLogged(ev))
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
func (r *watchRun) lastSeen(id int) uint64 { return max(r.log.Last(id), r.start) }
