package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
)

// ownedKeys are the keys one client writes in set and multi: client c of n
// owns keys c, c+n, c+2n, ... so it alone knows each key's last value and
// can check it afterwards.
type ownedKeys struct {
	keys      []int
	last      [][]byte // last value acknowledged (or set up) per key
	uncertain []bool   // the last write failed: it may or may not have landed
}

// spread is the number of keys actually used: at least one per client.
func spread(env *Env, clients int) int { return max(env.Options.Keys, clients) }

func initValue(env *Env, k int) []byte {
	return value(fmt.Sprintf("k%d:init:", k), env.Options.ValueSize)
}

// setupKeys creates the run's key spread, each client creating the keys
// it owns, and leaves an ownedKeys in each client's State.
func setupKeys(ctx context.Context, env *Env, clients []*Client) error {
	if err := ensure(ctx, clients[0].Store, env.Prefix, env.Prefix+"/k"); err != nil {
		return err
	}
	n := spread(env, len(clients))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, c := range clients {
		ok := &ownedKeys{}
		for k := c.ID; k < n; k += len(clients) {
			ok.keys = append(ok.keys, k)
			ok.last = append(ok.last, initValue(env, k))
			ok.uncertain = append(ok.uncertain, false)
		}
		c.State = ok
		wg.Go(func() {
			for i, k := range ok.keys {
				err := c.Store.Create(ctx, env.key(k), ok.last[i], false)
				if errors.Is(err, ErrExists) {
					err = c.Store.Set(ctx, env.key(k), ok.last[i])
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("bench: setting up %s: %w", env.key(k), err))
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// verifyOwned checks with linearizable reads that every key holds the last
// value its owner had acknowledged, skipping keys whose last write failed.
func verifyOwned(ctx context.Context, env *Env, clients []*Client, log *errorLog) {
	var wg sync.WaitGroup
	for _, c := range clients {
		ok := c.State.(*ownedKeys)
		wg.Go(func() {
			for i, k := range ok.keys {
				if ok.uncertain[i] {
					continue
				}
				log.add(checkValue(ctx, env, c.Store, env.key(k), ok.last[i], false))
			}
		})
	}
	wg.Wait()
}

// checkValue reads path and compares it with want.
func checkValue(ctx context.Context, env *Env, s Store, path string, want []byte, local bool) error {
	ctx, cancel := context.WithTimeout(ctx, env.Options.OpTimeout)
	defer cancel()
	got, err := s.Get(ctx, path, local)
	if err != nil {
		return fmt.Errorf("verify: reading %s: %w", path, err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %s holds %.40q, want %.40q", ErrMismatch, path, got, want)
	}
	return nil
}
