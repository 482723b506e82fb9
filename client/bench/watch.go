package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

func init() {
	Register("watch", "--watchers watchers spread over --clients sessions (spread over the members) watch one node that one writer sets --rate times a second (0: back to back); latency from the write's ack to each watcher's event, events delivered against expected (--watch-mode persistent or oneshot)", func() Workload { return watchWorkload{} })
}

// Watch modes (Options.WatchMode).
const (
	// WatchPersistent: a watch that reports every change (Arbor's watch op,
	// ZooKeeper's addWatch, etcd's Watch).
	WatchPersistent = "persistent"
	// WatchOneShot: a watch set with a read that fires once, then set
	// again with another read (ZooKeeper's getData watch); the changes in
	// between come without an event.
	WatchOneShot = "oneshot"
)

// DataWatcher is a Store that can watch a node persistently. Its methods,
// and those of the DataWatches it returns, may run concurrently with each
// other and with the Store's operations: the watch workload has many
// watchers per session.
type DataWatcher interface {
	// WatchData watches the data of path, which exists, and returns once
	// the watch is set: every later change of the data is reported once,
	// in order.
	WatchData(ctx context.Context, path string) (DataWatch, error)
}

// DataWatch is one persistent watch, read by one goroutine.
type DataWatch interface {
	// Next blocks until the next change and returns the node's new data.
	// An error ends the watch.
	Next(ctx context.Context) ([]byte, error)
	// Close removes the watch.
	Close(ctx context.Context) error
}

// OnceWatcher is a Store that can set a one-shot watch with a read; like
// DataWatcher's, its methods may run concurrently.
type OnceWatcher interface {
	// GetWatch reads path (from the connected member) and sets a one-shot
	// watch with the read; fired blocks until the watch fires, on the
	// first change of the data after the read, or ctx ends.
	GetWatch(ctx context.Context, path string) (data []byte, fired func(context.Context) error, err error)
}

// ErrWatchResync is returned by DataWatch.Next when the system sent the
// watched state instead of the changes since the watch's last event (an
// Arbor resync): changes went unreported. The watch goes on.
var ErrWatchResync = errors.New("bench: watch resynced: changes went unreported")

// catchUp bounds how long after the last write the watchers may take to
// see it; tests shorten it.
var catchUp = 10 * time.Second

type watchWorkload struct{}

func (watchWorkload) Run(ctx context.Context, env *Env) (Result, error) {
	o := env.Options
	mode := o.WatchMode
	if mode == "" {
		mode = WatchPersistent
	}
	path := env.Options.Path
	if path == "" {
		path = env.Prefix + "/watched"
	}
	writer, err := env.Dial(ctx)
	if err != nil {
		return Result{}, err
	}
	defer func() { closeQuickly(ctx, writer) }()
	if err := supportsWatch(env, writer, mode); err != nil {
		return Result{}, err
	}
	if err := ensure(ctx, writer, ancestors(parent(path))...); err != nil {
		return Result{}, err
	}
	err = writer.Create(ctx, path, seqValue(0, o.ValueSize), false)
	if errors.Is(err, ErrExists) {
		err = writer.Set(ctx, path, seqValue(0, o.ValueSize))
	}
	if err != nil {
		return Result{}, err
	}
	sessions := min(o.Clients, max(o.Watchers, 1))
	stores, err := dialSpread(ctx, env, sessions)
	if err != nil {
		return Result{}, err
	}
	defer closeStores(ctx, stores)

	res := Result{System: env.System, Workload: "watch", Clients: sessions, Watchers: o.Watchers, WatchMode: mode, ValueSize: o.ValueSize, Rate: o.Rate}
	var errs errorLog
	run := &watchRun{env: env, path: path, mode: mode, tracks: make([]watchTrack, o.Watchers)}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := run.start(ctx, wctx, stores); err != nil {
		stop()
		run.wg.Wait()
		return res, err
	}
	if env.Progress != nil {
		fmt.Fprintf(env.Progress, "%s watch: %d %s watches set over %d sessions\n", env.System, o.Watchers, mode, sessions)
	}
	start := time.Now()
	run.acks = newAckTable(start, writeCapacity(o))
	run.ready.Store(true)
	last := run.write(ctx, writer, &errs)
	elapsed := time.Since(start)
	run.awaitSeen(ctx, last)
	stop()
	run.wg.Wait()

	for i := range run.tracks {
		t := &run.tracks[i]
		t.finish(run.acks, last, mode == WatchPersistent)
		res.EventsDelivered += t.delivered
		res.EventsBeforeAck += t.early
		res.EventsMissed += t.missed
		if t.err != nil {
			errs.add(fmt.Errorf("watcher %d: %w", i, t.err))
		}
	}
	for s := int64(1); s <= last; s++ {
		if !run.acks.uncertain(s) {
			res.Writes++
		}
	}
	res.EventsExpected = res.Writes * int64(o.Watchers)
	fromAck, fromWrite := run.hist.merged()
	res.fill(fromAck, elapsed)
	res.P50FromWriteMs, res.P99FromWriteMs = ms(fromWrite.Quantile(0.5)), ms(fromWrite.Quantile(0.99))
	errs.into(&res)
	return res, ctx.Err()
}

// supportsWatch says whether the store can watch in mode.
func supportsWatch(env *Env, s Store, mode string) error {
	var ok bool
	switch mode {
	case WatchPersistent:
		_, ok = s.(DataWatcher)
	case WatchOneShot:
		_, ok = s.(OnceWatcher)
	default:
		return fmt.Errorf("bench: unknown watch mode %q (want %s or %s)", mode, WatchPersistent, WatchOneShot)
	}
	if !ok {
		return fmt.Errorf("%w: %s's store has no %s watch", ErrUnsupported, env.System, mode)
	}
	return nil
}

// writeCapacity is how many updates the writer may make: the --ops
// budget, or what the rate allows over the duration with room to spare,
// or (back to back) a bound no loopback cluster reaches in 10 s a write.
func writeCapacity(o Options) int {
	switch {
	case o.Ops > 0:
		return int(o.Ops) + 1
	case o.Rate > 0:
		return int(o.Rate*o.Duration.Seconds()*1.1) + 100
	}
	return int(max(o.Duration.Seconds(), 1)*50000) + 1
}

// dialSpread opens n sessions, session i with member i mod the members
// only, so the watchers are spread over every member.
func dialSpread(ctx context.Context, env *Env, n int) ([]Store, error) {
	stores := make([]Store, n)
	for i := range stores {
		eps := env.Endpoints
		if len(eps) > 0 {
			eps = eps[i%len(eps) : i%len(eps)+1]
		}
		s, err := env.DialAt(ctx, eps)
		if err != nil {
			closeStores(ctx, stores[:i])
			return nil, fmt.Errorf("bench: opening session %d of %d: %w", i+1, n, err)
		}
		stores[i] = s
	}
	return stores, nil
}

func closeStores(ctx context.Context, stores []Store) {
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Go(func() { closeQuickly(ctx, s) })
	}
	wg.Wait()
}

// watchRun is one run of the watch workload.
type watchRun struct {
	env    *Env
	path   string
	mode   string
	tracks []watchTrack
	hist   shardedHistogram
	acks   *ackTable   // set before ready
	ready  atomic.Bool // the writer has started: events may come
	wg     sync.WaitGroup
}

// start sets every watcher's watch, watcher i on session i mod sessions,
// the sessions in parallel, and starts a goroutine per watcher that
// records its events until wctx ends.
func (r *watchRun) start(ctx, wctx context.Context, stores []Store) error {
	var (
		setup sync.WaitGroup
		errs  errorLog
	)
	for si, s := range stores {
		setup.Go(func() {
			for i := si; i < len(r.tracks); i += len(stores) {
				sctx, cancel := context.WithTimeout(ctx, r.env.Options.OpTimeout)
				err := r.watch(sctx, wctx, s, &r.tracks[i])
				cancel()
				if err != nil {
					errs.add(fmt.Errorf("bench: setting watch %d: %w", i, err))
					return
				}
			}
		})
	}
	setup.Wait()
	var res Result
	errs.into(&res)
	if res.FirstError != "" {
		return errors.New(res.FirstError)
	}
	return nil
}

// watch sets one watcher's watch and starts its goroutine.
func (r *watchRun) watch(ctx, wctx context.Context, s Store, t *watchTrack) error {
	if r.mode == WatchPersistent {
		w, err := s.(DataWatcher).WatchData(ctx, r.path)
		if err != nil {
			return err
		}
		r.wg.Go(func() {
			defer func() {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(wctx), time.Second)
				_ = w.Close(cctx) // the run is over; the session closes next
				cancel()
			}()
			r.followPersistent(wctx, w, t)
		})
		return nil
	}
	ow := s.(OnceWatcher)
	data, fired, err := ow.GetWatch(ctx, r.path)
	if err != nil {
		return err
	}
	seq, ok := parseSeq(data)
	if !ok || seq != 0 {
		return fmt.Errorf("%w: read %q before the first write", ErrMismatch, data)
	}
	r.wg.Go(func() { r.followOneShot(wctx, ow, fired, t) })
	return nil
}

func (r *watchRun) followPersistent(ctx context.Context, w DataWatch, t *watchTrack) {
	for {
		data, err := w.Next(ctx)
		now := time.Now()
		if err != nil {
			if ctx.Err() == nil && t.err == nil {
				t.err = fmt.Errorf("watch ended: %w", err)
			}
			return
		}
		seq, ok := parseSeq(data)
		if !ok || !r.ready.Load() {
			t.checkFailed("event with data %.20q", data)
			continue
		}
		t.event(r.acks, &r.hist, seq, now, true)
	}
}

func (r *watchRun) followOneShot(ctx context.Context, ow OnceWatcher, fired func(context.Context) error, t *watchTrack) {
	for {
		err := fired(ctx)
		now := time.Now()
		if err != nil {
			if ctx.Err() == nil && t.err == nil {
				t.err = fmt.Errorf("one-shot watch: %w", err)
			}
			return
		}
		if !r.ready.Load() {
			t.checkFailed("watch fired before the first write")
			return
		}
		t.event(r.acks, &r.hist, t.seen.Load()+1, now, false)
		var data []byte
		for {
			rctx, cancel := context.WithTimeout(ctx, r.env.Options.OpTimeout)
			data, fired, err = ow.GetWatch(rctx, r.path)
			cancel()
			if err == nil || ctx.Err() != nil {
				break
			}
			// A failed read leaves no watch: read again, counting it.
			if t.err == nil {
				t.err = fmt.Errorf("setting the watch again: %w", err)
			}
		}
		if err != nil {
			return
		}
		seq, ok := parseSeq(data)
		if !ok {
			t.checkFailed("read %.20q", data)
			return
		}
		t.read(r.acks, seq)
	}
}

// write sets the node to updates 1, 2, ... one at a time, at Options.Rate
// a second (back to back when 0), for Options.Ops updates or
// Options.Duration, and returns the last update's number.
func (r *watchRun) write(ctx context.Context, s Store, errs *errorLog) int64 {
	o := r.env.Options
	start := r.acks.start
	deadline := start.Add(o.Duration)
	var seq int64
	for ctx.Err() == nil && seq+1 < int64(len(r.acks.at)) {
		if o.Ops > 0 && seq >= o.Ops || o.Ops == 0 && !time.Now().Before(deadline) {
			break
		}
		seq++
		if o.Rate > 0 {
			// On schedule: after a slow write the next go at once (one
			// outstanding) until the writer is back on it.
			if d := time.Until(start.Add(time.Duration(float64(seq-1) / o.Rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, o.OpTimeout)
		r.acks.send(seq, time.Now())
		err := s.Set(wctx, r.path, seqValue(seq, o.ValueSize))
		now := time.Now()
		cancel()
		if err != nil {
			r.acks.fail(seq)
			errs.add(fmt.Errorf("write %d: %w", seq, err))
			continue
		}
		r.acks.ack(seq, now)
	}
	return seq
}

// awaitSeen waits until every watcher knows of update last, for up to
// catchUp.
func (r *watchRun) awaitSeen(ctx context.Context, last int64) {
	deadline := time.Now().Add(catchUp)
	for i := range r.tracks {
		for r.tracks[i].seen.Load() < last && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TreeWatcher is a Store that can watch a subtree: every created, deleted
// and data event of path and its descendants. Like DataWatcher's, its
// methods may run concurrently.
type TreeWatcher interface {
	WatchTree(ctx context.Context, path string) (DataWatch, error)
}
