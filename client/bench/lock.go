package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

func init() {
	Register("lock", "--clients contenders (a session each) take turns holding one exclusive lock (--path): acquire, timed from request to grant, then release; ops/s is grants (handoffs) per second", func() Workload { return lockWorkload{} })
}

// Locker is a Store that can take an exclusive lock: the cluster's own
// lock (Arbor) or the system's usual client-side recipe (ZooKeeper,
// etcd). Stores without one cannot run the lock workload.
type Locker interface {
	// Lock blocks until this session holds the exclusive lock at path, or
	// ctx ends, and returns the grant's fencing token, which grows with
	// every grant of the lock. After a failed Lock the session may still
	// be queued for the lock: the caller closes the session.
	Lock(ctx context.Context, path string) (token uint64, err error)
	// Unlock releases the lock at path, which this session holds.
	Unlock(ctx context.Context, path string) error
}

type lockWorkload struct{}

func (lockWorkload) Run(ctx context.Context, env *Env) (Result, error) {
	path := env.Options.Path
	if path == "" {
		path = env.Prefix + "/lock"
	}
	clients, err := DialClients(ctx, env, env.Options.Clients)
	if err != nil {
		return Result{}, err
	}
	defer CloseClients(ctx, clients)
	if _, ok := clients[0].Store.(Locker); !ok {
		return Result{}, fmt.Errorf("%w: %s's store has no lock", ErrUnsupported, env.System)
	}
	// The lock's node exists before the run, on every system alike (Arbor
	// would create it, ZooKeeper's recipe needs it).
	if err := ensure(ctx, clients[0].Store, ancestors(path)...); err != nil {
		return Result{}, err
	}
	var check lockCheck
	return RunTimedOps(ctx, env, "lock", clients, func(ctx context.Context, c *Client) (time.Duration, error) {
		return lockOnce(ctx, env, c, path, &check)
	})
}

// lockOnce acquires the lock, checks the grant against the other
// clients' and releases it; the latency is the acquire's.
func lockOnce(ctx context.Context, env *Env, c *Client, path string, check *lockCheck) (time.Duration, error) {
	l, ok := c.Store.(Locker)
	if !ok { // a session that could not be replaced: try again
		renew(ctx, env, c)
		return 0, errNoSession
	}
	t0 := time.Now()
	token, err := l.Lock(ctx, path)
	d := time.Since(t0)
	if err != nil {
		renew(ctx, env, c)
		return 0, fmt.Errorf("lock: %w", err)
	}
	held := check.enter(c.ID, token)
	check.leave(c.ID)
	if err := l.Unlock(ctx, path); err != nil {
		renew(ctx, env, c)
		return 0, errors.Join(held, fmt.Errorf("unlock: %w", err))
	}
	return d, held
}

// renew replaces c's session after a failed lock or unlock: closing it
// withdraws whatever it held or waited for, so the others are not left
// behind a grant nobody will release.
func renew(ctx context.Context, env *Env, c *Client) {
	closeQuickly(ctx, c.Store)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), env.Options.OpTimeout)
	defer cancel()
	s, err := env.Dial(dctx)
	if err != nil {
		c.Store = nopStore{}
		return
	}
	c.Store = s
}

// lockCheck is how the contenders check the lock in process: at most one
// of them holds it at a time, and every grant's token is above the
// previous grant's.
type lockCheck struct {
	holder atomic.Int64  // ID+1 of the client holding the lock; 0: none
	last   atomic.Uint64 // token+1 of the latest grant; 0: none yet
}

// enter records client id's grant with token.
func (k *lockCheck) enter(id int, token uint64) error {
	var errs []error
	if !k.holder.CompareAndSwap(0, int64(id)+1) {
		errs = append(errs, fmt.Errorf("%w: client %d was granted the lock while client %d held it", ErrMismatch, id, k.holder.Load()-1))
	}
	if prev := k.last.Swap(token + 1); prev != 0 && token+1 <= prev {
		errs = append(errs, fmt.Errorf("%w: client %d was granted token %d after token %d", ErrMismatch, id, token, prev-1))
	}
	return errors.Join(errs...)
}

// leave records that client id is about to release the lock.
func (k *lockCheck) leave(id int) { k.holder.CompareAndSwap(int64(id)+1, 0) }

// ancestors returns path and every ancestor of it but the root, the
// shortest first: "/a/b" -> "/a", "/a/b".
func ancestors(path string) []string {
	var out []string
	for i := 1; i < len(path); i++ {
		if path[i] == '/' {
			out = append(out, path[:i])
		}
	}
	if path != "/" && !strings.HasSuffix(path, "/") {
		out = append(out, path)
	}
	return out
}

// parent is the path of path's parent ("/" for the root's children).
func parent(path string) string {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return "/"
	}
	return path[:i]
}
