package bench

import (
	"context"
	"fmt"

	"github.com/arbor-db/arbor/client"
)

var (
	_ DataWatcher = (*ArborStore)(nil)
	_ OnceWatcher = (*ArborStore)(nil)
	_ TreeWatcher = (*ArborStore)(nil)
)

// WatchData sets a persistent watch on path (the watch op).
func (s *ArborStore) WatchData(ctx context.Context, path string) (DataWatch, error) {
	w, err := s.c.Watch(ctx, path)
	if err != nil {
		return nil, arborErr(err)
	}
	return arborWatch{w}, nil
}

// WatchTree sets a recursive persistent watch on path.
func (s *ArborStore) WatchTree(ctx context.Context, path string) (DataWatch, error) {
	w, err := s.c.Watch(ctx, path, client.Recursive())
	if err != nil {
		return nil, arborErr(err)
	}
	return arborWatch{w}, nil
}

// GetWatch reads path from the connected member with a one-shot watch
// (get with "watch": true).
func (s *ArborStore) GetWatch(ctx context.Context, path string) ([]byte, func(context.Context) error, error) {
	var ch <-chan client.WatchEvent
	data, _, err := s.c.Get(ctx, path, client.Local(), client.WatchOnce(&ch))
	if err != nil {
		return nil, nil, arborErr(err)
	}
	return data, func(ctx context.Context) error {
		select {
		case ev, ok := <-ch:
			if !ok {
				return fmt.Errorf("bench: one-shot watch of %s ended without an event", path)
			}
			return ev.Err
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

// arborWatch is a persistent watch of an ArborStore.
type arborWatch struct{ w *client.Watcher }

// Next returns the data of the next created or data event; other events
// (children, deleted) come with no data. A resync is ErrWatchResync; the
// watch goes on after it.
func (a arborWatch) Next(ctx context.Context) ([]byte, error) {
	select {
	case ev, ok := <-a.w.Events():
		if !ok {
			return nil, fmt.Errorf("bench: watch ended: %w", a.w.Err())
		}
		if ev.Type == client.EventResync {
			return nil, fmt.Errorf("%w: at zxid %d", ErrWatchResync, ev.Zxid)
		}
		return ev.Data, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (a arborWatch) Close(ctx context.Context) error { return a.w.Close(ctx) }
