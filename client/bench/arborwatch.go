package bench

import (
	"context"
	"errors"
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
	return s.watch(ctx, path, false)
}

// WatchTree sets a recursive persistent watch on path.
func (s *ArborStore) WatchTree(ctx context.Context, path string) (DataWatch, error) {
	return s.watch(ctx, path, true)
}

func (s *ArborStore) watch(ctx context.Context, path string, recursive bool) (DataWatch, error) {
	var opts []client.WatchOption
	if recursive {
		opts = append(opts, client.Recursive())
	}
	w, err := s.c.Watch(ctx, path, opts...)
	if err != nil {
		return nil, arborErr(err)
	}
	return &arborWatch{s: s, path: path, recursive: recursive, w: w}, nil
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
type arborWatch struct {
	s         *ArborStore
	path      string
	recursive bool
	w         *client.Watcher
	last      uint64 // zxid of the last event returned
}

// Next returns the data of the next created or data event; other events
// (children, deleted) come with no data. A resync is ErrWatchResync; the
// watch goes on after it. A watch whose buffer overflowed (its reader fell
// behind) is set again since the last event, as the client's
// documentation says to: no event is lost.
func (a *arborWatch) Next(ctx context.Context) ([]byte, error) {
	for {
		select {
		case ev, ok := <-a.w.Events():
			if !ok {
				if err := a.w.Err(); errors.Is(err, client.ErrWatchOverflow) {
					if err := a.rewatch(ctx); err != nil {
						return nil, err
					}
					continue
				}
				return nil, fmt.Errorf("bench: watch ended: %w", a.w.Err())
			}
			a.last = ev.Zxid
			if ev.Type == client.EventResync {
				return nil, fmt.Errorf("%w: at zxid %d", ErrWatchResync, ev.Zxid)
			}
			return ev.Data, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (a *arborWatch) rewatch(ctx context.Context) error {
	opts := []client.WatchOption{client.Since(a.last)}
	if a.recursive {
		opts = append(opts, client.Recursive())
	}
	w, err := a.s.c.Watch(ctx, a.path, opts...)
	if err != nil {
		return fmt.Errorf("bench: watching again after an overflow: %w", arborErr(err))
	}
	a.w = w
	return nil
}

func (a *arborWatch) Close(ctx context.Context) error { return a.w.Close(ctx) }
