package bench

import (
	"context"
	"fmt"
)

func init() {
	Register("get", "read a random key of the spread: linearizable, or local with --local", func() Workload { return getWorkload{} })
	Register("get-local", "get with local (sequentially consistent) reads", func() Workload { return getWorkload{local: true} })
	Register("get-linearizable", "get with linearizable reads, whatever --local says", func() Workload { return getWorkload{linearizable: true} })
}

type getWorkload struct{ local, linearizable bool }

func (w getWorkload) Run(ctx context.Context, env *Env) (Result, error) {
	local := (w.local || env.Options.Local) && !w.linearizable
	name := "get-linearizable"
	if local {
		name = "get-local"
	}
	clients, err := DialClients(ctx, env, env.Options.Clients)
	if err != nil {
		return Result{}, err
	}
	defer CloseClients(ctx, clients)
	if err := setupKeys(ctx, env, clients); err != nil {
		return Result{}, err
	}
	// A local read may be served by a member that has not applied the
	// setup yet: sync first, so any stale answer later is a real error.
	for _, c := range clients {
		if err := c.Store.Sync(ctx, env.Prefix); err != nil {
			return Result{}, fmt.Errorf("bench: sync before reading: %w", err)
		}
	}
	n := spread(env, len(clients))
	return RunOps(ctx, env, name, clients, func(ctx context.Context, c *Client) error {
		k := c.Rand.IntN(n)
		return checkValue(ctx, env, c.Store, env.key(k), initValue(env, k), local)
	})
}
