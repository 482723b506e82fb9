package bench

import (
	"context"
	"fmt"
)

func init() {
	Register("multi", "atomically create a new node and set a key of the spread", func() Workload { return multiWorkload{} })
}

type multiWorkload struct{}

func (multiWorkload) Run(ctx context.Context, env *Env) (Result, error) {
	clients, err := DialClients(ctx, env, env.Options.Clients)
	if err != nil {
		return Result{}, err
	}
	defer CloseClients(ctx, clients)
	if err := setupKeys(ctx, env, clients); err != nil {
		return Result{}, err
	}
	if err := ensure(ctx, clients[0].Store, env.Prefix+"/m"); err != nil {
		return Result{}, err
	}
	created := make([]lastCreate, len(clients))
	res, err := RunOps(ctx, env, "multi", clients, func(ctx context.Context, c *Client) error {
		ok := c.State.(*ownedKeys)
		i := c.Rand.IntN(len(ok.keys))
		p := fmt.Sprintf("%s/m/%d-%d", env.Prefix, c.ID, c.Seq)
		v := value(p+":", env.Options.ValueSize)
		err := c.Store.Multi(ctx, []Op{
			{Kind: OpCreate, Path: p, Data: v},
			{Kind: OpSet, Path: env.key(ok.keys[i]), Data: v},
		})
		if err != nil {
			ok.uncertain[i] = true
			return err
		}
		ok.last[i], ok.uncertain[i] = v, false
		created[c.ID] = lastCreate{path: p, data: v}
		return nil
	})
	if err != nil {
		return res, err
	}
	// Both halves of each acknowledged multi must be there.
	var log errorLog
	verifyOwned(ctx, env, clients, &log)
	for _, c := range clients {
		if lc := created[c.ID]; lc.path != "" {
			log.add(checkValue(ctx, env, c.Store, lc.path, lc.data, false))
		}
	}
	log.into(&res)
	return res, nil
}
