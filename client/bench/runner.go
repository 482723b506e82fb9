package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Client is one client's state inside RunOps. Workloads keep per-client
// state in State; only the client's own goroutine touches a Client.
type Client struct {
	ID    int
	Store Store
	Seq   int64 // operations this client has started, from 0
	Rand  *rand.Rand
	State any
}

// OpFunc performs one operation; a returned error is counted, and the
// operation's latency is recorded only when it succeeds.
type OpFunc func(ctx context.Context, c *Client) error

// TimedOpFunc is an OpFunc that says which latency to record, for
// operations of which only a part is timed (lock: the acquire, not the
// release).
type TimedOpFunc func(ctx context.Context, c *Client) (time.Duration, error)

// errorLog counts errors and keeps the first.
type errorLog struct {
	n     atomic.Int64
	mu    sync.Mutex
	first error
}

func (l *errorLog) add(err error) {
	if err == nil {
		return
	}
	l.n.Add(1)
	l.mu.Lock()
	if l.first == nil {
		l.first = err
	}
	l.mu.Unlock()
}

func (l *errorLog) into(r *Result) {
	r.Errors += l.n.Load()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first != nil && r.FirstError == "" {
		r.FirstError = l.first.Error()
	}
}

// RunOps runs op in a loop on every client (one goroutine each) until
// env.Options.Ops operations have started or, with Ops 0, until
// env.Options.Duration has passed, and returns the throughput, latency and
// error count. It stops early, returning ctx's error, when ctx is done.
func RunOps(ctx context.Context, env *Env, name string, clients []*Client, op OpFunc) (Result, error) {
	return RunTimedOps(ctx, env, name, clients, func(ctx context.Context, c *Client) (time.Duration, error) {
		t0 := time.Now()
		err := op(ctx, c)
		return time.Since(t0), err
	})
}

// RunTimedOps is RunOps recording the latency each operation returns.
func RunTimedOps(ctx context.Context, env *Env, name string, clients []*Client, op TimedOpFunc) (Result, error) {
	o := env.Options
	res := Result{System: env.System, Workload: name, Clients: len(clients), ValueSize: o.ValueSize}
	var (
		started atomic.Int64 // ops claimed, for the --ops budget
		done    atomic.Int64 // ops finished, for the progress line
		errs    errorLog
		hists   = make([]Histogram, len(clients))
		wg      sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(o.Duration)
	more := func() bool {
		if ctx.Err() != nil {
			return false
		}
		if o.Ops > 0 {
			return started.Add(1) <= o.Ops
		}
		return time.Now().Before(deadline)
	}
	target := env.Options.Duration.String()
	if o.Ops > 0 {
		target = fmt.Sprintf("%d ops", o.Ops)
	}
	stopProgress := startProgress(env, name, target, len(clients), start, &done, &errs.n)
	for i, c := range clients {
		wg.Go(func() {
			h := &hists[i]
			for more() {
				opCtx, cancel := context.WithTimeout(ctx, o.OpTimeout)
				d, err := op(opCtx, c)
				cancel()
				env.OpLog.record(time.Now(), d, err)
				c.Seq++
				done.Add(1)
				if err != nil {
					errs.add(fmt.Errorf("client %d op %d: %w", c.ID, c.Seq-1, err))
					continue
				}
				h.Record(d)
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
	errs.into(&res)
	return res, ctx.Err()
}

// startProgress prints a progress line every second until the returned
// function is called, which ends the line.
func startProgress(env *Env, name, target string, clients int, start time.Time, done, errs *atomic.Int64) func() {
	if env.Progress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	line := func() {
		el := time.Since(start)
		n := done.Load()
		fmt.Fprintf(env.Progress, "\r%s %s, %d clients: %.0fs of %s, %d ops (%.0f/s), %d errors   ",
			env.System, name, clients, el.Seconds(), target, n, float64(n)/max(el.Seconds(), 1e-9), errs.Load())
	}
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				line()
			}
		}
	})
	return func() {
		close(stop)
		wg.Wait()
		line()
		fmt.Fprintln(env.Progress)
	}
}

// DialClients opens n sessions, one per client, closing them all if one
// fails.
func DialClients(ctx context.Context, env *Env, n int) ([]*Client, error) {
	clients := make([]*Client, n)
	for i := range clients {
		s, err := env.Dial(ctx)
		if err != nil {
			CloseClients(ctx, clients[:i])
			return nil, fmt.Errorf("bench: opening session %d of %d: %w", i+1, n, err)
		}
		clients[i] = &Client{ID: i, Store: s, Rand: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))}
	}
	return clients, nil
}

// CloseClients closes every client's session, giving each a few seconds.
func CloseClients(ctx context.Context, clients []*Client) {
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = c.Store.Close(cctx) // the run is over; a failed close changes no result
		})
	}
	wg.Wait()
}

// ensure creates each path in order unless it exists.
func ensure(ctx context.Context, s Store, paths ...string) error {
	for _, p := range paths {
		if err := s.Create(ctx, p, nil, false); err != nil && !errors.Is(err, ErrExists) {
			return fmt.Errorf("bench: creating %s: %w", p, err)
		}
	}
	return nil
}

// value is a value of at least size bytes that starts with tag, so a check
// can tell which write a read saw.
func value(tag string, size int) []byte {
	b := make([]byte, max(size, len(tag)))
	n := copy(b, tag)
	for i := n; i < len(b); i++ {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// key is the path of key i of the run's key spread.
func (e *Env) key(i int) string { return fmt.Sprintf("%s/k/%08d", e.Prefix, i) }
