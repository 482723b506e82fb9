package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

func init() {
	Register("watch-memory", "set --watchers watches (--watch-mode), each on a node of its own, over --clients sessions spread over the members; member memory before and after, per watch", func() Workload { return watchMemoryWorkload{} })
}

// Sizes of watch-memory's setup.
const (
	watchMemBatch   = 100 // nodes created per multi
	churnValueSize  = 256 << 10
	churnReads      = 400 // reads of the churn node per member, at most
	watchMemChecked = 100 // watches checked to fire, after measuring
)

// watchMemSettle is how long the members get to settle before each
// measurement; tests shorten it.
var watchMemSettle = 2 * time.Second

type watchMemoryWorkload struct{}

// watchMemPath is node i of the run; every path has the same length.
func (e *Env) watchMemPath(i int) string { return fmt.Sprintf("%s/m/%07d", e.Prefix, i) }

func (watchMemoryWorkload) Run(ctx context.Context, env *Env) (Result, error) {
	o := env.Options
	mode := o.WatchMode
	if mode == "" {
		mode = WatchPersistent
	}
	stores, err := dialSpread(ctx, env, max(o.Clients, min(len(env.Endpoints), 3), 1))
	if err != nil {
		return Result{}, err
	}
	defer closeStores(ctx, stores)
	if err := supportsWatch(env, stores[0], mode); err != nil {
		return Result{}, err
	}
	if err := ensure(ctx, stores[0], env.Prefix, env.Prefix+"/m"); err != nil {
		return Result{}, err
	}
	res := Result{System: env.System, Workload: "watch-memory", Clients: len(stores), Watchers: o.Watchers, WatchMode: mode, PathBytes: len(env.watchMemPath(0))}
	if err := createNodes(ctx, env, stores, o.Watchers); err != nil {
		return res, err
	}
	churn := env.Prefix + "/churn"
	if err := stores[0].Create(ctx, churn, value("churn", churnValueSize), false); err != nil {
		return res, err
	}
	measure := func() (rss, heap uint64) {
		select {
		case <-ctx.Done():
		case <-time.After(watchMemSettle):
		}
		churnMembers(ctx, env, stores, churn)
		if env.Memory != nil {
			rss, _ = env.Memory(ctx) // 0: unknown
		}
		if env.Heap != nil {
			heap, _ = env.Heap(ctx)
		}
		return rss, heap
	}
	res.MemBeforeBytes, res.HeapBeforeBytes = measure()
	start := time.Now()
	watches, err := setWatches(ctx, env, stores, mode)
	defer func() {
		for _, w := range watches {
			if w.close != nil {
				w.close()
			}
		}
	}()
	if err != nil {
		return res, err
	}
	elapsed := time.Since(start)
	res.Ops, res.ElapsedSec = int64(o.Watchers), elapsed.Seconds()
	res.OpsPerSec = float64(o.Watchers) / max(elapsed.Seconds(), 1e-9) // watches set a second
	res.MemAfterBytes, res.HeapAfterBytes = measure()

	// The watches are real: a sample of them fires.
	var errs errorLog
	step := max(o.Watchers/watchMemChecked, 1)
	for i := 0; i < o.Watchers; i += step {
		if err := stores[0].Set(ctx, env.watchMemPath(i), []byte("changed")); err != nil {
			errs.add(err)
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, o.OpTimeout)
		errs.add(watches[i].fired(wctx))
		cancel()
	}
	errs.into(&res)
	return res, ctx.Err()
}

// createNodes creates the n nodes to watch, in multis of watchMemBatch,
// the sessions in parallel.
func createNodes(ctx context.Context, env *Env, stores []Store, n int) error {
	var (
		wg   sync.WaitGroup
		errs errorLog
	)
	batches := (n + watchMemBatch - 1) / watchMemBatch
	for si, s := range stores {
		wg.Go(func() {
			for b := si; b < batches; b += len(stores) {
				var ops []Op
				for i := b * watchMemBatch; i < min((b+1)*watchMemBatch, n); i++ {
					ops = append(ops, Op{Kind: OpCreate, Path: env.watchMemPath(i)})
				}
				mctx, cancel := context.WithTimeout(ctx, env.Options.OpTimeout)
				err := s.Multi(mctx, ops)
				cancel()
				if err != nil {
					errs.add(fmt.Errorf("bench: creating nodes %d..%d: %w", b*watchMemBatch, b*watchMemBatch+len(ops)-1, err))
					return
				}
			}
		})
	}
	wg.Wait()
	var r Result
	errs.into(&r)
	if r.FirstError != "" {
		return errors.New(r.FirstError)
	}
	return nil
}

// churnMembers reads a large node through a session on each member, so
// each member allocates and collects a few times: the memory measured
// after it is live memory, not the garbage of what came before.
func churnMembers(ctx context.Context, env *Env, stores []Store, path string) {
	var wg sync.WaitGroup
	for _, s := range stores[:min(len(stores), max(len(env.Endpoints), 1))] {
		wg.Go(func() {
			// About 100 MiB for 100,000 watches, enough to make a member
			// with a few hundred MiB of heap collect; less for fewer.
			for range min(churnReads, max(env.Options.Watchers/250, 20)) {
				gctx, cancel := context.WithTimeout(ctx, env.Options.OpTimeout)
				_, err := s.Get(gctx, path, true)
				cancel()
				if err != nil {
					return // the figure is only less settled
				}
			}
		})
	}
	wg.Wait()
}

// heldWatch is one watch of watch-memory.
type heldWatch struct {
	fired func(context.Context) error // waits for the node's next change
	close func()
}

// setWatches sets a watch on every node, node i's on session i mod the
// sessions, the sessions in parallel.
func setWatches(ctx context.Context, env *Env, stores []Store, mode string) ([]heldWatch, error) {
	n := env.Options.Watchers
	watches := make([]heldWatch, n)
	var (
		wg   sync.WaitGroup
		errs errorLog
	)
	for si, s := range stores {
		wg.Go(func() {
			for i := si; i < n; i += len(stores) {
				sctx, cancel := context.WithTimeout(ctx, env.Options.OpTimeout)
				w, err := holdWatch(sctx, s, env.watchMemPath(i), mode)
				cancel()
				if err != nil {
					errs.add(fmt.Errorf("bench: watch %d: %w", i, err))
					return
				}
				watches[i] = w
			}
		})
	}
	wg.Wait()
	var r Result
	errs.into(&r)
	if r.FirstError != "" {
		return watches, errors.New(r.FirstError)
	}
	return watches, nil
}

func holdWatch(ctx context.Context, s Store, path, mode string) (heldWatch, error) {
	if mode == WatchOneShot {
		_, fired, err := s.(OnceWatcher).GetWatch(ctx, path)
		return heldWatch{fired: fired}, err
	}
	w, err := s.(DataWatcher).WatchData(ctx, path)
	if err != nil {
		return heldWatch{}, err
	}
	return heldWatch{
		fired: func(ctx context.Context) error { _, err := w.Next(ctx); return err },
		close: func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = w.Close(cctx) // the sessions close next
			cancel()
		},
	}, nil
}
