package faults

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/server/servertest/lincheck"
)

var quietLogger = slog.New(slog.DiscardHandler)

const (
	numKeys   = 16              // registers /k/0 ... /k/15
	opTimeout = 2 * time.Second // one request; longer than a failover
	ephParent = "/eph"
	// abandonTimeoutMs is the timeout of the sessions the workload drops
	// without a close: the members' minimum.
	abandonTimeoutMs = 2000
)

// lockConfig is the lock workload of this suite: four sessions spread
// over the members on two locks, with the members' minimum session timeout,
// so that faults make holders lose their locks.
func lockConfig(addrs []string, seed int64) lincheck.LockConfig {
	return lincheck.LockConfig{Addrs: addrs, Clients: 4, Pinned: 2, Paths: 2, SessionTimeout: abandonTimeoutMs * time.Millisecond,
		OpTimeout: opTimeout, LockWait: 3 * opTimeout, PauseEvery: 40, Seed: seed}
}

func addLockFigures(a, b lincheck.LockFigures) lincheck.LockFigures {
	return lincheck.LockFigures{Grants: a.Grants + b.Grants, Released: a.Released + b.Released,
		Lost: a.Lost + b.Lost, Handovers: a.Handovers + b.Handovers, Paused: a.Paused + b.Paused,
		Accepted: a.Accepted + b.Accepted, StaleRefused: a.StaleRefused + b.StaleRefused,
		LiveRefused: a.LiveRefused + b.LiveRefused}
}

func keyPath(i int) string { return fmt.Sprintf("/k/%d", i) }

// workload runs clients on every member, each recording its operations,
// redialing whenever its connection breaks or its member cannot answer.
type workload struct {
	c   *cluster
	rec *lincheck.Recorder

	redials atomic.Int64
	ab      *lincheck.Abandoner // sessions dropped without a close

	mu   sync.Mutex
	ephs []string // ephemeral paths of sessions this workload closed
}

// startWorkload starts perMember clients homed on each member; the
// returned function stops them (each closes its session, recorded) and
// waits.
func startWorkload(ctx context.Context, c *cluster, rec *lincheck.Recorder, perMember int, seed uint64) (*workload, func()) {
	w := &workload{c: c, rec: rec, ab: &lincheck.Abandoner{Addrs: c.clientAddrs(), Parent: ephParent,
		TimeoutMs: abandonTimeoutMs, OpTimeout: opTimeout, Log: lincheck.NewSessionLog()}}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	n := 0
	for home := range c.Members {
		for range perMember {
			id := n
			n++
			wg.Go(func() {
				w.worker(ctx, id, home, rand.New(rand.NewPCG(seed, uint64(id))))
			})
		}
	}
	return w, func() { cancel(); wg.Wait() }
}

// worker is one client: random operations on the registers, ephemerals of
// its own session, reads of other sessions' ephemerals, and now and then a
// close of its session and a fresh one.
func (w *workload) worker(ctx context.Context, id, home int, rng *rand.Rand) {
	var cn *lincheck.Conn
	var mine []string // ephemerals of the current session
	versions := map[string]int64{}
	seq, sessionOps := 0, 0
	drop := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		cn.Client().Close(cctx)
		cancel()
		cn, mine = nil, nil
	}
	for ctx.Err() == nil {
		if cn == nil {
			cn = w.dial(ctx, home)
			if cn == nil {
				continue
			}
			sessionOps = 40 + rng.IntN(80)
		}
		if sessionOps == 0 {
			// A recorded close: its ephemerals must be gone from every
			// read that starts after the answer.
			cctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			err := cn.Close(cctx)
			cancel()
			if err == nil {
				w.mu.Lock()
				w.ephs = append(w.ephs, mine...)
				w.mu.Unlock()
			}
			cn, mine = nil, nil
			continue
		}
		sessionOps--
		seq++
		data := fmt.Sprintf("w%d-%d", id, seq)
		key := keyPath(rng.IntN(numKeys))
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		var out lincheck.Output
		var err error
		switch r := rng.IntN(100); {
		case r < 25:
			out, err = cn.Get(octx, key, false)
		case r < 35:
			out, err = cn.Get(octx, key, true)
		case r < 50:
			out, err = cn.Set(octx, key, data, lincheck.AnyVersion)
		case r < 62:
			out, err = cn.Set(octx, key, data, versions[key])
		case r < 72:
			out, err = cn.CAS(octx, key, versions[key], data)
		case r < 82:
			out, err = cn.Create(octx, key, data, false)
		case r < 90:
			v := lincheck.AnyVersion
			if rng.IntN(2) == 0 {
				v = versions[key]
			}
			out, err = cn.Delete(octx, key, v)
		case r == 93:
			w.ab.Cycle(ctx, rng.IntN, fmt.Sprintf("a%d-%d", id, seq))
		case r == 94:
			w.ab.Probe(ctx, rng.IntN)
		case r < 96:
			p := fmt.Sprintf("%s/w%d-%d", ephParent, id, seq)
			if out, err = cn.Create(octx, p, data, true); err == nil {
				mine = append(mine, p)
			}
		default:
			if p := w.closedEphemeral(rng); p != "" {
				out, err = cn.Get(octx, p, false)
			} else {
				out, err = cn.Get(octx, key, false)
			}
		}
		cancel()
		if err == nil && out.Version >= 0 {
			versions[key] = out.Version
		}
		if err != nil && !semantic(err) {
			w.redials.Add(1)
			drop()
		}
	}
	if cn != nil {
		cctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		if cn.Close(cctx) == nil {
			w.mu.Lock()
			w.ephs = append(w.ephs, mine...)
			w.mu.Unlock()
		}
		cancel()
	}
}

// semantic reports whether err is an answer about the tree (the
// connection is fine); anything else makes the worker redial.
func semantic(err error) bool {
	for _, s := range []error{client.ErrNoNode, client.ErrNodeExists, client.ErrBadVersion, client.ErrNotEmpty} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// dial opens a session, home member first, and wraps it for recording.
func (w *workload) dial(ctx context.Context, home int) *lincheck.Conn {
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cl, err := client.Dial(dctx, client.Config{
		Endpoints: w.c.Endpoints(home), InOrder: true, DialTimeout: time.Second, Logger: quietLogger,
	})
	if err != nil {
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
		return nil
	}
	return w.rec.Wrap(cl, cl.Server())
}

func (w *workload) closedEphemeral(rng *rand.Rand) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ephs) == 0 {
		return ""
	}
	return w.ephs[rng.IntN(len(w.ephs))]
}

// createParents makes /k and /eph before the workload starts.
func createParents(ctx context.Context, c *cluster) error {
	cl, err := client.Dial(ctx, client.Config{Endpoints: c.clientAddrs(), Logger: quietLogger})
	if err != nil {
		return err
	}
	defer cl.Close(ctx)
	for _, p := range []string{"/k", ephParent} {
		if _, _, err := cl.Create(ctx, p, nil); err != nil && !errors.Is(err, client.ErrNodeExists) {
			return fmt.Errorf("create %s: %w", p, err)
		}
	}
	return nil
}
