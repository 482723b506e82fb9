package zk

import (
	"context"
	"fmt"

	gozk "github.com/go-zookeeper/zk"

	"github.com/arbor-db/arbor/client/bench"
)

// Only the one-shot watch: go-zookeeper (v1.0.4, its latest) has no
// addWatch, so ZooKeeper's persistent and recursive watches (3.6+) are
// out of reach of this store.
var _ bench.OnceWatcher = (*Store)(nil)

// GetWatch reads path with a data watch (getData with watch set), from
// the connected server. go-zookeeper keeps one server-side watch per path
// and connection, however many GetW calls share it, and fans its event out
// to all of them.
func (s *Store) GetWatch(ctx context.Context, path string) ([]byte, func(context.Context) error, error) {
	type read struct {
		data []byte
		ch   <-chan gozk.Event
	}
	r, err := run(ctx, func() (read, error) {
		data, _, ch, err := s.conn.GetW(path)
		return read{data, ch}, err
	})
	if err != nil {
		return nil, nil, err
	}
	return r.data, func(ctx context.Context) error {
		select {
		case ev := <-r.ch:
			if ev.Err != nil {
				return ev.Err
			}
			if ev.Type != gozk.EventNodeDataChanged {
				return fmt.Errorf("zk: watch of %s fired with %v", path, ev.Type)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}
