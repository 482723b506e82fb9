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
	Register("set-watched", "set (--clients writers, --keys) while --watchers recursive watches of / (over --watch-sessions sessions) report every change; compare its ops/s with set's; every watch must see every acknowledged set", func() Workload { return setWatchedWorkload{} })
}

type setWatchedWorkload struct{}

func (setWatchedWorkload) Run(ctx context.Context, env *Env) (Result, error) {
	o := env.Options
	clients, err := DialClients(ctx, env, o.Clients)
	if err != nil {
		return Result{}, err
	}
	defer CloseClients(ctx, clients)
	if err := setupKeys(ctx, env, clients); err != nil {
		return Result{}, err
	}
	stores, err := dialSpread(ctx, env, o.WatchSessions)
	if err != nil {
		return Result{}, err
	}
	defer closeStores(ctx, stores)
	if _, ok := stores[0].(TreeWatcher); !ok {
		return Result{}, fmt.Errorf("%w: %s's store has no recursive watch", ErrUnsupported, env.System)
	}
	tw, err := startTreeWatches(ctx, env, stores)
	if err != nil {
		return Result{}, err
	}
	defer tw.stop()
	if env.Progress != nil {
		fmt.Fprintf(env.Progress, "%s set-watched: %d recursive watches of / set over %d sessions\n", env.System, o.Watchers, len(stores))
	}
	res, err := RunOps(ctx, env, "set-watched", clients, setOp(env))
	if err != nil {
		return res, err
	}
	res.Watchers = o.Watchers
	var log errorLog
	verifyOwned(ctx, env, clients, &log)
	tw.check(ctx, res.Ops, &res, &log)
	log.into(&res)
	return res, nil
}

// treeWatches are recursive watches of /, each counted by a goroutine.
type treeWatches struct {
	counts  []atomic.Int64 // events per watch
	resyncs atomic.Int64
	ended   []atomic.Pointer[error] // why a watch ended early
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// startTreeWatches sets Options.Watchers recursive watches of /, watch i
// on session i mod the sessions.
func startTreeWatches(ctx context.Context, env *Env, stores []Store) (*treeWatches, error) {
	n := env.Options.Watchers
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	tw := &treeWatches{counts: make([]atomic.Int64, n), ended: make([]atomic.Pointer[error], n), cancel: cancel}
	for i := range n {
		sctx, scancel := context.WithTimeout(ctx, env.Options.OpTimeout)
		w, err := stores[i%len(stores)].(TreeWatcher).WatchTree(sctx, "/")
		scancel()
		if err != nil {
			tw.stop()
			return nil, fmt.Errorf("bench: setting recursive watch %d: %w", i, err)
		}
		tw.wg.Go(func() {
			defer func() {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				_ = w.Close(cctx) // the sessions close next
				cancel()
			}()
			for {
				_, err := w.Next(wctx)
				switch {
				case errors.Is(err, ErrWatchResync):
					tw.resyncs.Add(1)
				case err != nil:
					if wctx.Err() == nil {
						tw.ended[i].Store(&err)
					}
					return
				default:
					tw.counts[i].Add(1)
				}
			}
		})
	}
	return tw, nil
}

func (tw *treeWatches) stop() {
	tw.cancel()
	tw.wg.Wait()
}

// check waits up to catchUp for every watch to have reported at least
// sets events (it may see more: it watches the whole tree), then fills in
// the result's event counts and logs each watch that fell short or ended.
func (tw *treeWatches) check(ctx context.Context, sets int64, res *Result, log *errorLog) {
	deadline := time.Now().Add(catchUp)
	for i := range tw.counts {
		for tw.counts[i].Load() < sets && tw.ended[i].Load() == nil && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
	tw.stop()
	res.EventsExpected = sets * int64(len(tw.counts))
	for i := range tw.counts {
		n := tw.counts[i].Load()
		res.EventsDelivered += n
		if n < sets {
			res.EventsMissed += sets - n
		}
		if p := tw.ended[i].Load(); p != nil {
			log.add(fmt.Errorf("recursive watch %d ended: %w", i, *p))
		} else if n < sets {
			log.add(fmt.Errorf("%w: recursive watch %d reported %d events for %d acknowledged sets", ErrMismatch, i, n, sets))
		}
	}
	if r := tw.resyncs.Load(); r > 0 {
		log.add(fmt.Errorf("%w: recursive watches resynced %d times", ErrWatchResync, r))
	}
}
