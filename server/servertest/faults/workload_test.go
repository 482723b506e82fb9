package faults

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/server/servertest/lincheck"
)

const (
	numKeys   = 4
	opTimeout = 1500 * time.Millisecond
	ephParent = "/e"
)

// lockConfig is the lock workload of this suite: five sessions on two
// locks, with the cluster's minimum session timeout, so that partitions
// and crashes make holders lose their locks.
func lockConfig(addrs []string, seed int64) lincheck.LockConfig {
	return lincheck.LockConfig{Addrs: addrs, Clients: 5, Pinned: 3, Paths: 2, SessionTimeout: time.Second,
		OpTimeout: opTimeout, LockWait: 4 * time.Second, PauseEvery: 40, Seed: seed}
}

func addLockFigures(a, b lincheck.LockFigures) lincheck.LockFigures {
	return lincheck.LockFigures{Grants: a.Grants + b.Grants, Released: a.Released + b.Released,
		Lost: a.Lost + b.Lost, Handovers: a.Handovers + b.Handovers, Paused: a.Paused + b.Paused,
		Accepted: a.Accepted + b.Accepted, StaleRefused: a.StaleRefused + b.StaleRefused,
		LiveRefused: a.LiveRefused + b.LiveRefused}
}

func key(i int) string { return fmt.Sprintf("/k%d", i) }

// worker is one client of the workload: a session on one member, redialed
// (a new session, maybe on another member) when its connection breaks or an
// outcome is unknown.
type worker struct {
	id    int
	rng   *rand.Rand
	addrs []string
	rec   *lincheck.Recorder
	ab    *lincheck.Abandoner // sessions dropped without a close (expiry checks)

	conn     *lincheck.Conn
	seq      int
	versions map[string]int64 // last version seen per key
	redials  int
}

func newWorker(id int, seed int64, addrs []string, rec *lincheck.Recorder, ab *lincheck.Abandoner) *worker {
	return &worker{id: id, rng: rand.New(rand.NewSource(seed)), addrs: addrs, rec: rec, ab: ab, versions: map[string]int64{}}
}

func (w *worker) dial(ctx context.Context) (*lincheck.Conn, error) {
	i := w.rng.Intn(len(w.addrs))
	dctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	c, err := client.Dial(dctx, client.Config{
		Endpoints:      []string{w.addrs[i]},
		NoDiscovery:    true, // the history names the member each operation went through
		SessionTimeout: 5 * time.Second,
		DialTimeout:    opTimeout,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	return w.rec.Wrap(c, fmt.Sprintf("m%d", i+1)), nil
}

// drop abandons the current connection without closing its session (the
// member may be gone); the session expires on its own.
func (w *worker) drop() {
	if w.conn == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	// An expired context: Close only stops the client's goroutines.
	cancel()
	_ = w.conn.Client().Close(cctx)
	w.conn = nil
	w.redials++
}

// run issues random operations until ctx ends, then closes its session.
func (w *worker) run(ctx context.Context) {
	defer func() {
		if w.conn != nil {
			cctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			_ = w.conn.Close(cctx)
			cancel()
		}
	}()
	for ctx.Err() == nil {
		if w.conn == nil {
			c, err := w.dial(ctx)
			if err != nil {
				sleepUntil(ctx, time.Now().Add(50*time.Millisecond))
				continue
			}
			w.conn = c
		}
		if err := w.step(ctx); err != nil && mustRedial(err) {
			w.drop()
		}
	}
}

// mustRedial: the connection may be broken or a write may still be in
// flight; start over on a new session so later operations are unambiguous.
func mustRedial(err error) bool {
	return client.IsIndeterminate(err) || errors.Is(err, client.ErrConnectionLost) ||
		errors.Is(err, client.ErrClosed) || errors.Is(err, client.ErrTimeout) ||
		errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrSessionExpired) ||
		errors.Is(err, client.ErrCanceled)
}

func (w *worker) data() string {
	w.seq++
	return fmt.Sprintf("w%d-%d", w.id, w.seq)
}

// version picks the version of a conditional write: mostly the last seen
// (likely to succeed), sometimes any or a stale one.
func (w *worker) version(k string) int64 {
	switch r := w.rng.Intn(10); {
	case r < 6:
		return w.versions[k]
	case r < 8:
		return lincheck.AnyVersion
	default:
		return int64(w.rng.Intn(4))
	}
}

func (w *worker) step(ctx context.Context) error {
	k := key(w.rng.Intn(numKeys))
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var out lincheck.Output
	var err error
	switch r := w.rng.Intn(100); {
	case r < 22:
		out, err = w.conn.Get(octx, k, false)
	case r < 37:
		out, err = w.conn.Get(octx, k, true)
	case r < 57:
		out, err = w.conn.Set(octx, k, w.data(), w.version(k))
	case r < 72:
		out, err = w.conn.CAS(octx, k, w.version(k), w.data())
	case r < 84:
		out, err = w.conn.Create(octx, k, w.data(), false)
	case r < 94:
		out, err = w.conn.Delete(octx, k, w.version(k))
	case r < 97:
		return w.ephemeralCycle(ctx)
	case r < 99:
		w.seq++
		w.ab.Cycle(ctx, w.rng.Intn, fmt.Sprintf("v%d-%d", w.id, w.seq))
		return nil
	default:
		w.ab.Probe(ctx, w.rng.Intn)
		return nil
	}
	if err == nil {
		w.versions[k] = out.Version
	}
	return err
}

// ephemeralCycle creates an ephemeral node on a second session, closes that
// session, and reads the node at once through the worker's own connection:
// once the close is acknowledged the node must be gone.
func (w *worker) ephemeralCycle(ctx context.Context) error {
	e, err := w.dial(ctx)
	if err != nil {
		return nil // no member reachable from here right now
	}
	path := fmt.Sprintf("%s/w%d-%d", ephParent, w.id, w.seq)
	w.seq++
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if _, err := e.Create(octx, path, "eph", true); err != nil {
		e.Client().Close(octx)
		return nil
	}
	if err := e.Close(octx); err != nil {
		return nil
	}
	_, err = w.conn.Get(octx, path, false)
	if errors.Is(err, client.ErrNoNode) {
		return nil
	}
	return err
}
