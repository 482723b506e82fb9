package lincheck

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"sync"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/fence"
)

// The lock workload: LockConfig.Clients clients, each a session of its own
// that prefers another member (the first LockConfig.Pinned of them talk to
// that member only, so that a fault of their member can cost them their
// session while they hold), contend for exclusive locks on a few paths
// under LockRoot. Each grant is recorded in a LockLog; the holder holds a
// few milliseconds (one in eight up to 0.7 s), writes with its token to
// the resource the lock guards (one fence.Guard per path, in this process),
// and unlocks. A holder whose Client.Context ends while it holds behaves as
// a process that woke up from a pause: it waits until its successor has
// written (or a while), then writes with its old token. Now and then a
// holder is paused on purpose: its client vanishes without a word, and it
// writes with its old token once another holder of the lock has written.
// The fence must refuse both.

// LockRoot is the parent of the lock workload's lock paths.
const LockRoot = "/locks"

// LockPath is the workload's i-th lock path.
func LockPath(i int) string { return fmt.Sprintf("%s/%d", LockRoot, i) }

// LockConfig configures a lock workload.
type LockConfig struct {
	Addrs   []string // client HOST:PORT of the members
	Clients int      // sessions contending
	// Pinned: the first Pinned clients talk to their home member only;
	// the others move to another member when theirs fails.
	Pinned int
	Paths  int // lock paths they contend for
	// SessionTimeout of the clients' sessions: short, so that faults make
	// holders lose their locks.
	SessionTimeout time.Duration
	OpTimeout      time.Duration // one request other than lock
	// LockWait bounds one Lock; a client that waits longer starts over on
	// a new session.
	LockWait time.Duration
	// PauseEvery: about one grant in PauseEvery pauses its holder (0:
	// none).
	PauseEvery int
	Seed       int64
}

// LockRun is the lock workload of one run.
type LockRun struct {
	// Log is what the clients recorded.
	Log *LockLog

	cfg     LockConfig
	fenceMu sync.Mutex   // one write to a resource at a time, recorded in order
	fences  fence.Guards // the resource each lock path guards, by path
	wg      sync.WaitGroup
}

// StartLockRun starts the workload's clients; they run until ctx ends.
func StartLockRun(ctx context.Context, cfg LockConfig) *LockRun {
	r := &LockRun{Log: NewLockLog(), cfg: cfg}
	for id := range cfg.Clients {
		rng := rand.New(rand.NewSource(cfg.Seed + int64(id) + 1))
		r.wg.Go(func() { r.client(ctx, id, rng) })
	}
	return r
}

// dial opens a session, on member first if pinned, else there first.
func (r *LockRun) dial(ctx context.Context, first int, pinned bool) (*client.Client, error) {
	eps := append(append([]string{}, r.cfg.Addrs[first:]...), r.cfg.Addrs[:first]...)
	if pinned {
		eps = eps[:1]
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	// A pinned client stays on its member: the client does not learn
	// the others.
	return client.Dial(dctx, client.Config{Endpoints: eps, SessionTimeout: r.cfg.SessionTimeout,
		DialTimeout: r.cfg.OpTimeout, Logger: slog.New(slog.DiscardHandler), NoDiscovery: pinned, InOrder: true})
}

// outcome of one lock cycle: what becomes of the session.
type outcome int

const (
	keep    outcome = iota // go on with it
	replace                // close it and start a new one
	vanish                 // the holder was paused: the session is left to expire
)

// client takes locks until ctx ends.
func (r *LockRun) client(ctx context.Context, id int, rng *rand.Rand) {
	home := id % len(r.cfg.Addrs)
	var c *client.Client
	defer func() {
		if c != nil {
			closeSoon(c)
		}
	}()
	for ctx.Err() == nil {
		if c == nil {
			var err error
			if c, err = r.dial(ctx, home, id < r.cfg.Pinned); err != nil {
				sleepUntil(ctx, time.Now().Add(50*time.Millisecond))
				continue
			}
		}
		switch r.cycle(ctx, c, id, rng) {
		case replace:
			closeSoon(c)
			c = nil
		case vanish:
			c = nil
		}
		sleepUntil(ctx, time.Now().Add(time.Duration(rng.Intn(5))*time.Millisecond))
	}
}

// cycle takes one lock, writes with its token, and unlocks. Any failure
// replaces the session, so that every Lock of a session asks for a new
// place in the queue (a failed Lock may leave the old one).
func (r *LockRun) cycle(ctx context.Context, c *client.Client, id int, rng *rand.Rand) outcome {
	path := LockPath(rng.Intn(r.cfg.Paths))
	asked := time.Now()
	lctx, cancel := context.WithTimeout(ctx, r.cfg.LockWait)
	g, err := c.Lock(lctx, path)
	cancel()
	if err != nil {
		return replace
	}
	h := r.Log.Grant(LockGrant{Path: path, Client: id, Session: c.Session(), Member: c.Server(),
		Token: g.Token, Asked: asked, Granted: time.Now(), Deadline: c.Deadline()})
	sess := c.Context()
	stop := context.AfterFunc(sess, func() { r.Log.Lost(h, time.Now(), context.Cause(sess), c.Deadline()) })
	defer stop()

	if r.cfg.PauseEvery > 0 && rng.Intn(r.cfg.PauseEvery) == 0 {
		r.Log.End(h, time.Now(), true)
		abandon(c)
		r.wg.Go(func() { r.wake(ctx, h, path, g.Token, 4*r.cfg.SessionTimeout) })
		return vanish
	}
	// Mostly short holds; some long ones, for faults to land in.
	d := time.Duration(2+rng.Intn(20)) * time.Millisecond
	if rng.Intn(8) == 0 {
		d = time.Duration(200+rng.Intn(500)) * time.Millisecond
	}
	hold := time.NewTimer(d)
	defer hold.Stop()
	select {
	case <-hold.C:
	case <-sess.Done():
		// It lost the lock, or may have: write late, as a paused process.
		r.awaitSuccessor(ctx, path, g.Token, 2*r.cfg.SessionTimeout)
	case <-ctx.Done():
	}
	r.write(h, path, g.Token, func() bool { return sess.Err() != nil })
	r.Log.End(h, time.Now(), false)
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.OpTimeout)
	defer cancel()
	if err := c.Unlock(uctx, path); err != nil {
		return replace
	}
	r.Log.Released(h)
	return keep
}

// wake is a paused holder waking up: once another holder has written, or
// after within, it writes with its old token.
func (r *LockRun) wake(ctx context.Context, h int, path string, token uint64, within time.Duration) {
	r.awaitSuccessor(ctx, path, token, within)
	r.write(h, path, token, func() bool { return true })
}

// awaitSuccessor waits until the resource of path accepted a token above
// token, for at most within or until ctx ends.
func (r *LockRun) awaitSuccessor(ctx context.Context, path string, token uint64, within time.Duration) {
	deadline := time.Now().Add(within)
	for r.Log.Highest(path) <= token && time.Now().Before(deadline) && ctx.Err() == nil {
		sleepUntil(ctx, time.Now().Add(10*time.Millisecond))
	}
}

// write writes to the resource of path with token and records the outcome; stale
// says, at the moment of the write, whether the holder knows it may have
// lost the lock.
func (r *LockRun) write(h int, path string, token uint64, stale func() bool) {
	r.fenceMu.Lock()
	defer r.fenceMu.Unlock()
	isStale := stale()
	accepted := false
	// The write itself cannot fail, and tokens are never 0: a refusal
	// (fence.ErrStale) is all Do can return.
	_ = r.fences.Guard(path).Do(token, func() error { accepted = true; return nil })
	r.Log.Wrote(h, time.Now(), accepted, isStale)
}

// abandon stops c's goroutines without closing its session, as a process
// that stops; the cluster expires the session.
func abandon(c *client.Client) {
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Close(cctx)
}

// Check runs after the workload stopped and the cluster healed: every
// path is locked once more by a new session (each lock must be free within
// settle: a holder's session that ended must release it), with a write
// that the fence must accept, and then the log is checked (exclusive: see
// CheckLocks).
func (r *LockRun) Check(ctx context.Context, settle time.Duration, exclusive bool) []error {
	r.wg.Wait()
	var errs []error
	c, err := r.dial(ctx, 0, false)
	if err != nil {
		return []error{fmt.Errorf("lock check: dial: %w", err)}
	}
	defer closeSoon(c)
	for i := range r.cfg.Paths {
		path := LockPath(i)
		asked := time.Now()
		lctx, cancel := context.WithTimeout(ctx, settle)
		g, err := c.Lock(lctx, path)
		// A connection the healing cluster breaks under the request is no
		// violation: asking again goes on with the same place in the queue.
		for err != nil && client.IsIndeterminate(err) && lctx.Err() == nil && !c.Expired() {
			g, err = c.Lock(lctx, path)
		}
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: lock %s not granted within %v of healing: %v", ErrLockViolation, path, settle, err))
			continue
		}
		h := r.Log.Grant(LockGrant{Path: path, Client: -1, Session: c.Session(), Member: c.Server(),
			Token: g.Token, Asked: asked, Granted: time.Now()})
		r.write(h, path, g.Token, func() bool { return false })
		r.Log.End(h, time.Now(), false)
		if err := c.Unlock(ctx, path); err != nil {
			errs = append(errs, fmt.Errorf("lock check: unlock %s: %w", path, err))
			continue
		}
		r.Log.Released(h)
	}
	return append(errs, CheckLocks(r.Log, exclusive)...)
}
