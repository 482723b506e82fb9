package bench

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
)

// memWatch is a watch of a memSystem: persistent (every change queued),
// recursive (also the subtree's) or one-shot (fired closed on the first).
type memWatch struct {
	sys       *memSystem
	session   int64
	path      string
	recursive bool
	once      bool
	fired     chan struct{} // one-shot: closed when it fires

	mu    sync.Mutex
	queue [][]byte
	kick  chan struct{} // persistent: a send after each queued change
}

var errWatchClosed = errors.New("mem: watch closed")

func (w *memWatch) matches(path string) bool {
	if w.recursive {
		return w.path == "/" || path == w.path || strings.HasPrefix(path, w.path+"/")
	}
	return path == w.path
}

// notifyLocked reports a change of path to the watches, with m.mu held.
func (m *memSystem) notifyLocked(path string, data []byte) {
	kept := m.watches[:0]
	for _, w := range m.watches {
		if !w.matches(path) {
			kept = append(kept, w)
			continue
		}
		if w.once {
			close(w.fired)
			continue
		}
		kept = append(kept, w)
		if m.events++; m.dropEvery > 0 && m.events%m.dropEvery == 0 {
			continue
		}
		w.mu.Lock()
		w.queue = append(w.queue, append([]byte(nil), data...))
		w.mu.Unlock()
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	m.watches = kept
}

func (s *memStore) addWatch(w *memWatch) error {
	if err := s.fault(); err != nil {
		return err
	}
	s.sys.mu.Lock()
	defer s.sys.mu.Unlock()
	if _, ok := s.sys.nodes[w.path]; !ok && !w.recursive {
		return ErrNotFound
	}
	s.sys.watches = append(s.sys.watches, w)
	return nil
}

func (s *memStore) WatchData(_ context.Context, path string) (DataWatch, error) {
	w := &memWatch{sys: s.sys, session: s.id, path: path, kick: make(chan struct{}, 1)}
	return w, s.addWatch(w)
}

func (s *memStore) WatchTree(_ context.Context, path string) (DataWatch, error) {
	w := &memWatch{sys: s.sys, session: s.id, path: path, recursive: true, kick: make(chan struct{}, 1)}
	return w, s.addWatch(w)
}

func (s *memStore) GetWatch(_ context.Context, path string) ([]byte, func(context.Context) error, error) {
	if err := s.fault(); err != nil {
		return nil, nil, err
	}
	s.sys.mu.Lock()
	defer s.sys.mu.Unlock()
	v, ok := s.sys.nodes[path]
	if !ok {
		return nil, nil, ErrNotFound
	}
	w := &memWatch{sys: s.sys, session: s.id, path: path, once: true, fired: make(chan struct{})}
	s.sys.watches = append(s.sys.watches, w)
	return append([]byte(nil), v...), func(ctx context.Context) error {
		select {
		case <-w.fired:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

func (w *memWatch) Next(ctx context.Context) ([]byte, error) {
	for {
		w.mu.Lock()
		if len(w.queue) > 0 {
			d := w.queue[0]
			w.queue = w.queue[1:]
			w.mu.Unlock()
			return d, nil
		}
		w.mu.Unlock()
		select {
		case <-w.kick:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (w *memWatch) Close(context.Context) error {
	w.sys.mu.Lock()
	defer w.sys.mu.Unlock()
	for i, o := range w.sys.watches {
		if o == w {
			w.sys.watches = append(w.sys.watches[:i], w.sys.watches[i+1:]...)
			return nil
		}
	}
	return errWatchClosed
}

// dropWatchesLocked removes a closed session's watches, with m.mu held.
func (m *memSystem) dropWatchesLocked(session int64) {
	m.watches = slices.DeleteFunc(m.watches, func(w *memWatch) bool { return w.session == session })
}

// openWatches is how many watches the system holds.
func (m *memSystem) openWatches() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.watches)
}
