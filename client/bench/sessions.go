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
	Register("sessions", "open --sessions sessions with an ephemeral node each (--clients at a time); time to open all, member memory before and after", func() Workload { return sessionsWorkload{} })
}

type sessionsWorkload struct{}

// sessionsChecked is how many ephemerals are read back, before and after
// their sessions close.
const sessionsChecked = 100

// ephemeralGrace is how long a closed session's ephemeral may linger.
var ephemeralGrace = 15 * time.Second

func (sessionsWorkload) Run(ctx context.Context, env *Env) (Result, error) {
	o := env.Options
	admin, err := env.Dial(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("bench: opening the admin session: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if err := ensure(ctx, admin, env.Prefix, env.Prefix+"/s"); err != nil {
		return Result{}, err
	}
	res := Result{System: env.System, Workload: "sessions", Clients: o.Clients, ValueSize: o.ValueSize}
	if env.Memory != nil {
		if m, err := env.Memory(ctx); err == nil {
			res.MemBeforeBytes = m
		}
	}
	var before []MemberStat
	if env.Stats != nil && o.Hold > 0 {
		if before, err = env.Stats(ctx); err != nil {
			return res, err
		}
	}

	path := func(i int) string { return fmt.Sprintf("%s/s/%d", env.Prefix, i) }
	stores := make([]Store, o.Sessions)
	var (
		next, done atomic.Int64
		errs       errorLog
		hists      = make([]Histogram, o.Clients)
		wg         sync.WaitGroup
	)
	start := time.Now()
	stopProgress := startProgress(env, "sessions", fmt.Sprintf("%d sessions", o.Sessions), o.Clients, start, &done, &errs.n)
	for w := range o.Clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= o.Sessions {
					return
				}
				t0 := time.Now()
				err := openWithEphemeral(ctx, env, path(i), &stores[i])
				done.Add(1)
				if err != nil {
					errs.add(fmt.Errorf("session %d: %w", i, err))
					continue
				}
				hists[w].Record(time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	var all Histogram
	for i := range hists {
		all.Merge(&hists[i])
	}
	res.fill(&all, elapsed)
	if env.Memory != nil {
		if m, err := env.Memory(ctx); err == nil {
			res.MemAfterBytes = m
		}
	}

	if before != nil {
		if err := hold(ctx, env, &res, before, stores, path); err != nil {
			errs.add(err)
		}
	}

	// Every open session's ephemeral is there; once closed, it is gone.
	step := max(o.Sessions/sessionsChecked, 1)
	for i := 0; i < o.Sessions; i += step {
		if stores[i] != nil {
			errs.add(checkValue(ctx, env, admin, path(i), value(path(i), o.ValueSize), false))
		}
	}
	closeAll(ctx, stores, o.Clients)
	for i := 0; i < o.Sessions; i += step {
		if stores[i] != nil {
			errs.add(awaitGone(ctx, admin, path(i)))
		}
	}
	errs.into(&res)
	return res, ctx.Err()
}

func openWithEphemeral(ctx context.Context, env *Env, path string, slot *Store) error {
	ctx, cancel := context.WithTimeout(ctx, env.Options.OpTimeout)
	defer cancel()
	s, err := env.Dial(ctx)
	if err != nil {
		return err
	}
	if err := s.Create(ctx, path, value(path, env.Options.ValueSize), true); err != nil {
		_ = s.Close(context.WithoutCancel(ctx)) // the create already failed
		return err
	}
	*slot = s
	return nil
}

func closeAll(ctx context.Context, stores []Store, workers int) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(stores) {
					return
				}
				if stores[i] != nil {
					cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
					_ = stores[i].Close(cctx) // awaitGone checks the effect
					cancel()
				}
			}
		})
	}
	wg.Wait()
}

// awaitGone polls until path no longer exists: a closed session's
// ephemerals may take a moment to go on some systems.
func awaitGone(ctx context.Context, s Store, path string) error {
	deadline := time.Now().Add(ephemeralGrace)
	for {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := s.Get(gctx, path, false)
		cancel()
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%w: ephemeral %s outlived its closed session (last read: %v)", ErrMismatch, path, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// hold keeps the sessions open and idle for Options.Hold, measures each
// member's cost over it, then counts the sessions whose ephemeral is gone
// (none may be: their clients were alive all along).
func hold(ctx context.Context, env *Env, res *Result, before []MemberStat, stores []Store, path func(int) string) error {
	// Let the opening settle (allocation, GC) before measuring.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Second):
	}
	open, err := env.Stats(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	if env.Progress != nil {
		fmt.Fprintf(env.Progress, "%s sessions: holding %d sessions idle for %v\n", env.System, len(stores), env.Options.Hold)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(env.Options.Hold):
	}
	held, err := env.Stats(ctx)
	if err != nil {
		return err
	}
	res.HoldSec = time.Since(start).Seconds()
	n := 0
	for _, s := range stores {
		if s != nil {
			n++
		}
	}
	res.Members = costs(before, open, held, res.HoldSec, n)
	lost, err := countLost(ctx, env, stores, path)
	res.SessionsLost = lost
	if err == nil && lost > 0 {
		err = fmt.Errorf("%w: %d of %d sessions lost their ephemeral while their clients were alive", ErrMismatch, lost, n)
	}
	return err
}

// countLost reads every open session's ephemeral through its own session
// and counts those that are gone.
func countLost(ctx context.Context, env *Env, stores []Store, path func(int) string) (int, error) {
	var lost atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(env.Options.Clients, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(stores) {
					return
				}
				if stores[i] == nil {
					continue
				}
				gctx, cancel := context.WithTimeout(ctx, env.Options.OpTimeout)
				_, err := stores[i].Get(gctx, path(i), true)
				cancel()
				if errors.Is(err, ErrNotFound) || errors.Is(err, ErrSessionLost) {
					lost.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(lost.Load()), ctx.Err()
}

// openAll opens a session with an ephemeral for every slot, Clients at a
// time; failures go to errs and leave the slot nil.
func openAll(ctx context.Context, env *Env, stores []Store, path func(int) string, errs *errorLog) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(env.Options.Clients, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(stores) {
					return
				}
				if err := openWithEphemeral(ctx, env, path(i), &stores[i]); err != nil {
					errs.add(fmt.Errorf("session %d: %w", i, err))
				}
			}
		})
	}
	wg.Wait()
}
