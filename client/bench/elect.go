package bench

import (
	"context"
	"fmt"
	"time"
)

func init() {
	Register("elect-failover", "kill -9 the process of an election's leader (a candidate this command spawns); time until the next candidate, in this process, is elected (repeated --ops times, default 1), reported with the session timeout that bounds it", func() Workload { return electFailoverWorkload{} })
}

// Elector is a Store that can stand for election: the cluster's own
// election (Arbor) or the system's usual client-side recipe.
type Elector interface {
	// Campaign blocks until this session leads the election at path, or
	// ctx ends. After a failed Campaign the session may still be a
	// candidate: the caller closes the session.
	Campaign(ctx context.Context, path string, value []byte) error
	// Resign ends this session's candidacy at path.
	Resign(ctx context.Context, path string) error
	// SessionTimeout is the session's timeout as the cluster granted it:
	// how long after this client's death its candidacy may outlive it.
	SessionTimeout() time.Duration
}

// Candidate is a candidate leading an election from another process.
type Candidate interface {
	// Kill sends the process SIGKILL and waits for it to exit.
	Kill() error
	// SessionTimeout is the candidate's session timeout.
	SessionTimeout() time.Duration
}

type electFailoverWorkload struct{}

func (electFailoverWorkload) Run(ctx context.Context, env *Env) (Result, error) {
	if env.Spawn == nil {
		return Result{}, fmt.Errorf("%w: elect-failover needs a way to start a candidate process", ErrUnsupported)
	}
	path := env.Options.Path
	if path == "" {
		path = env.Prefix + "/elect"
	}
	s, err := env.Dial(ctx)
	if err != nil {
		return Result{}, err
	}
	defer func() { closeQuickly(ctx, s) }()
	if _, ok := s.(Elector); !ok {
		return Result{}, fmt.Errorf("%w: %s's store has no election", ErrUnsupported, env.System)
	}
	if err := ensure(ctx, s, ancestors(path)...); err != nil {
		return Result{}, err
	}
	res := Result{System: env.System, Workload: "elect-failover", Clients: 1}
	var (
		h    Histogram
		errs errorLog
	)
	start := time.Now()
	for r := range max(env.Options.Ops, 1) {
		d, timeout, err := electRound(ctx, env, s.(Elector), path)
		res.SessionTimeoutMs = max(res.SessionTimeoutMs, ms(timeout))
		if err != nil {
			errs.add(fmt.Errorf("round %d: %w", r, err))
			if ctx.Err() != nil {
				break
			}
			// The session may still be a candidate: start afresh.
			closeQuickly(ctx, s)
			if s, err = env.Dial(ctx); err != nil {
				errs.add(err)
				s = nopStore{}
				break
			}
			continue
		}
		h.Record(d)
		if env.Progress != nil {
			fmt.Fprintf(env.Progress, "%s elect-failover: round %d: elected %.0f ms after kill -9 of the leader (session timeout %v)\n", env.System, r+1, ms(d), timeout)
		}
	}
	res.fill(&h, time.Since(start))
	res.OpsPerSec = 0 // rounds a second says nothing
	errs.into(&res)
	return res, ctx.Err()
}

// electRound spawns a candidate, which leads; campaigns behind it; kills
// it and times this session's election. It resigns afterwards so the next
// round's candidate leads at once.
func electRound(ctx context.Context, env *Env, e Elector, path string) (time.Duration, time.Duration, error) {
	cand, err := env.Spawn(ctx, path)
	if err != nil {
		return 0, 0, fmt.Errorf("spawning the leading candidate: %w", err)
	}
	defer cand.Kill() // a no-op once killed; on an early return it must not lead on
	timeout := cand.SessionTimeout()
	// The dead leader's candidacy ends with its session: within a few
	// timeouts, or something is wrong.
	cctx, cancel := context.WithTimeout(ctx, 3*timeout+30*time.Second)
	defer cancel()
	won := make(chan error, 1)
	go func() { won <- e.Campaign(cctx, path, []byte("bench")) }()
	t0 := time.Now()
	if err := cand.Kill(); err != nil {
		cancel()
		<-won
		return 0, timeout, err
	}
	err = <-won
	d := time.Since(t0)
	if err != nil {
		return 0, timeout, fmt.Errorf("campaign: %w", err)
	}
	if err := e.Resign(ctx, path); err != nil {
		return d, timeout, fmt.Errorf("resign: %w", err)
	}
	// The killed candidate pinged at most a third of its timeout before
	// dying, so its session outlives it by at least two thirds of it; half
	// leaves room for clocks.
	if d < timeout/2 {
		return d, timeout, fmt.Errorf("%w: elected %v after the leader's kill, sooner than its session (timeout %v) can have expired", ErrMismatch, d, timeout)
	}
	return d, timeout, nil
}
