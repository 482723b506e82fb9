package bench

import (
	"context"
	"fmt"
)

func init() {
	Register("set", "replace the value of a random key of the spread (--keys)", func() Workload { return setWorkload{} })
}

type setWorkload struct{}

func (setWorkload) Run(ctx context.Context, env *Env) (Result, error) {
	clients, err := DialClients(ctx, env, env.Options.Clients)
	if err != nil {
		return Result{}, err
	}
	defer CloseClients(ctx, clients)
	if err := setupKeys(ctx, env, clients); err != nil {
		return Result{}, err
	}
	res, err := RunOps(ctx, env, "set", clients, setOp(env))
	if err != nil {
		return res, err
	}
	var log errorLog
	verifyOwned(ctx, env, clients, &log)
	log.into(&res)
	return res, nil
}

// setOp sets a random key of the client's own to a new value.
func setOp(env *Env) OpFunc {
	return func(ctx context.Context, c *Client) error {
		ok := c.State.(*ownedKeys)
		i := c.Rand.IntN(len(ok.keys))
		v := value(fmt.Sprintf("c%d:s%d:", c.ID, c.Seq), env.Options.ValueSize)
		if err := c.Store.Set(ctx, env.key(ok.keys[i]), v); err != nil {
			ok.uncertain[i] = true
			return err
		}
		ok.last[i], ok.uncertain[i] = v, false
		return nil
	}
}
