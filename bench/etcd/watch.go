package etcd

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/arbor-db/arbor/client/bench"
)

// etcd has no one-shot watch: a Watch streams every revision.
var (
	_ bench.DataWatcher = (*Store)(nil)
	_ bench.TreeWatcher = (*Store)(nil)
)

// WatchData watches the key path from the revision after its current
// one, so no change after the call is missed, and returns once the member
// has created the watch. All of a Store's watches share the client's one
// gRPC watch stream.
func (s *Store) WatchData(ctx context.Context, path string) (bench.DataWatch, error) {
	return s.watch(ctx, path)
}

// WatchTree watches every key with the prefix path (a subtree, as the
// bench lays keys out).
func (s *Store) WatchTree(ctx context.Context, path string) (bench.DataWatch, error) {
	return s.watch(ctx, path, clientv3.WithPrefix())
}

func (s *Store) watch(ctx context.Context, key string, opts ...clientv3.OpOption) (bench.DataWatch, error) {
	resp, err := s.c.Get(ctx, key, clientv3.WithSerializable(), clientv3.WithCountOnly())
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	opts = append(opts, clientv3.WithRev(resp.Header.Revision+1), clientv3.WithCreatedNotify())
	ch := s.c.Watch(wctx, key, opts...)
	select {
	case r, ok := <-ch:
		if !ok || !r.Created {
			cancel()
			return nil, fmt.Errorf("etcd: watch of %s not created: %v", key, r.Err())
		}
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
	return &watch{ch: ch, cancel: cancel}, nil
}

// watch is one etcd watch; pending holds the events of a response not
// yet returned.
type watch struct {
	ch      clientv3.WatchChan
	cancel  context.CancelFunc
	pending [][]byte
}

// Next returns the value of the next put (a delete has none).
func (w *watch) Next(ctx context.Context) ([]byte, error) {
	for len(w.pending) == 0 {
		select {
		case r, ok := <-w.ch:
			if !ok {
				return nil, fmt.Errorf("etcd: watch channel closed")
			}
			if err := r.Err(); err != nil {
				return nil, err
			}
			for _, ev := range r.Events {
				w.pending = append(w.pending, ev.Kv.Value)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	v := w.pending[0]
	w.pending = w.pending[1:]
	return v, nil
}

// Close cancels the watch.
func (w *watch) Close(context.Context) error {
	w.cancel()
	return nil
}
