package bench

import (
	"context"
	"fmt"
)

func init() {
	Register("create", "create a new node per operation", func() Workload { return createWorkload{} })
}

type createWorkload struct{}

// lastCreate is a client's last acknowledged create, checked afterwards.
type lastCreate struct {
	path string
	data []byte
}

func (createWorkload) Run(ctx context.Context, env *Env) (Result, error) {
	clients, err := DialClients(ctx, env, env.Options.Clients)
	if err != nil {
		return Result{}, err
	}
	defer CloseClients(ctx, clients)
	if err := ensure(ctx, clients[0].Store, env.Prefix, env.Prefix+"/c"); err != nil {
		return Result{}, err
	}
	res, err := RunOps(ctx, env, "create", clients, func(ctx context.Context, c *Client) error {
		p := fmt.Sprintf("%s/c/%d-%d", env.Prefix, c.ID, c.Seq)
		v := value(p+":", env.Options.ValueSize)
		if err := c.Store.Create(ctx, p, v, false); err != nil {
			return err
		}
		c.State = &lastCreate{path: p, data: v}
		return nil
	})
	if err != nil {
		return res, err
	}
	var log errorLog
	for _, c := range clients {
		if lc, ok := c.State.(*lastCreate); ok {
			log.add(checkValue(ctx, env, c.Store, lc.path, lc.data, false))
		}
	}
	log.into(&res)
	return res, nil
}
