package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

func init() {
	Register("failover", "kill -9 the leader of a cluster this command started; time to the first acknowledged write through the others (repeated --ops times, default 1), while --sessions sessions with an ephemeral each stay open (none may expire)", func() Workload { return failoverWorkload{} })
}

// Cluster is a cluster whose members this process can kill and restart.
type Cluster interface {
	Members() []string
	Endpoint(member string) string
	Leader(ctx context.Context) (string, error)
	Kill(member string) error // SIGKILL, and wait for the process to go
	Restart(ctx context.Context, member string) error
}

type failoverWorkload struct{}

// failoverAttempt bounds one write attempt while the cluster elects.
const failoverAttempt = 100 * time.Millisecond

func (failoverWorkload) Run(ctx context.Context, env *Env) (Result, error) {
	if env.Cluster == nil {
		return Result{}, fmt.Errorf("%w: failover needs a cluster this command started (--start-cluster)", ErrUnsupported)
	}
	res := Result{System: env.System, Workload: "failover", Clients: 1, ValueSize: env.Options.ValueSize}
	admin, err := env.Dial(ctx)
	if err != nil {
		return res, err
	}
	if err := ensure(ctx, admin, env.Prefix, env.Prefix+"/f"); err != nil {
		_ = admin.Close(ctx)
		return res, err
	}
	_ = admin.Close(ctx) // it may be connected to the member about to die
	rounds := max(env.Options.Ops, 1)
	var (
		h    Histogram
		errs errorLog
	)
	// Sessions that must live through every kill: each pings on its own
	// and resumes on another member when its own dies.
	stores := make([]Store, env.Options.Sessions)
	sessPath := func(i int) string { return fmt.Sprintf("%s/f/s%d", env.Prefix, i) }
	openAll(ctx, env, stores, sessPath, &errs)
	defer closeAll(ctx, stores, env.Options.Clients)
	start := time.Now()
	for r := range rounds {
		d, err := failoverRound(ctx, env, int(r))
		if err != nil {
			errs.add(fmt.Errorf("round %d: %w", r, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		h.Record(d)
		if env.Progress != nil {
			fmt.Fprintf(env.Progress, "%s failover: round %d: first write %.0f ms after kill -9\n", env.System, r+1, ms(d))
		}
	}
	res.fill(&h, time.Since(start))
	res.OpsPerSec = 0 // rounds a second says nothing
	lost, err := countLost(ctx, env, stores, sessPath)
	res.SessionsLost = lost
	if err == nil && lost > 0 {
		err = fmt.Errorf("%w: %d of %d sessions expired during the kills", ErrMismatch, lost, len(stores))
	}
	errs.add(err)
	errs.into(&res)
	return res, ctx.Err()
}

// failoverRound kills the leader, times the first write acknowledged by a
// survivor, checks it reads back, and restarts the killed member.
func failoverRound(ctx context.Context, env *Env, round int) (time.Duration, error) {
	leader, err := env.Cluster.Leader(ctx)
	if err != nil {
		return 0, err
	}
	var others []string
	for _, m := range env.Cluster.Members() {
		if m != leader {
			others = append(others, env.Cluster.Endpoint(m))
		}
	}
	// Connect before the kill so the time measured is the cluster's, not
	// the dial's.
	s, err := env.DialAt(ctx, others)
	if err != nil {
		return 0, err
	}
	defer func() { closeQuickly(ctx, s) }()
	path := fmt.Sprintf("%s/f/%d", env.Prefix, round)
	v := value(path+":", env.Options.ValueSize)

	t0 := time.Now()
	if err := env.Cluster.Kill(leader); err != nil {
		return 0, err
	}
	// A member may hold a write forwarded to the dead leader until its own
	// request timeout and answer a connection's requests in order: each
	// failed attempt therefore moves to a fresh session, as an impatient
	// client would, and the old one is closed in the background.
	var closing sync.WaitGroup
	defer closing.Wait()
	for {
		actx, cancel := context.WithTimeout(ctx, failoverAttempt)
		err = s.Create(actx, path, v, false)
		cancel()
		if err == nil || errors.Is(err, ErrExists) { // ErrExists: an earlier attempt landed
			break
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if time.Since(t0) > time.Minute {
			return 0, fmt.Errorf("no write acknowledged within a minute of killing %s: %w", leader, err)
		}
		old := s
		closing.Go(func() { closeQuickly(ctx, old) })
		dctx, cancel := context.WithTimeout(ctx, failoverAttempt)
		s, err = env.DialAt(dctx, others)
		cancel()
		if err != nil {
			s = nopStore{}
		}
	}
	d := time.Since(t0)
	if err := checkValue(ctx, env, s, path, v, false); err != nil {
		return d, err
	}
	if err := env.Cluster.Restart(ctx, leader); err != nil {
		return d, fmt.Errorf("restarting %s: %w", leader, err)
	}
	return d, nil
}

// closeQuickly closes s, not waiting long for a cluster in trouble.
func closeQuickly(ctx context.Context, s Store) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = s.Close(cctx) // the session's fate does not change the measurement
}
