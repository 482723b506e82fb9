package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// memSystem is an in-memory system with ZooKeeper's rules that matter
// here: parents must exist, create fails on an existing node, ephemerals
// go with their session. Faults make it misbehave so tests can see the
// checks fail.
type memSystem struct {
	mu       sync.Mutex
	nodes    map[string][]byte
	owner    map[string]int64 // ephemeral path -> session
	sessions atomic.Int64
	open     atomic.Int64

	dropSets  bool // acknowledge sets without applying them
	staleGets bool // answer gets with a wrong value
	failEvery int64
	calls     atomic.Int64
}

func newMemSystem() *memSystem {
	return &memSystem{nodes: map[string][]byte{"/": nil}, owner: map[string]int64{}}
}

func (m *memSystem) env(opts Options) *Env {
	return &Env{
		System: "mem",
		DialAt: func(context.Context, []string) (Store, error) {
			m.open.Add(1)
			return &memStore{sys: m, id: m.sessions.Add(1)}, nil
		},
		Options: opts,
		Memory:  func(context.Context) (uint64, error) { return uint64(1000 + 10*m.open.Load()), nil },
	}
}

type memStore struct {
	sys *memSystem
	id  int64
}

func (s *memStore) fault() error {
	if n := s.sys.calls.Add(1); s.sys.failEvery > 0 && n%s.sys.failEvery == 0 {
		return fmt.Errorf("injected failure %d", n)
	}
	return nil
}

func parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// createLocked applies a create with s.sys.mu held.
func (s *memStore) createLocked(path string, data []byte, ephemeral bool) error {
	if _, ok := s.sys.nodes[path]; ok {
		return fmt.Errorf("%w: %s", ErrExists, path)
	}
	if _, ok := s.sys.nodes[parent(path)]; !ok {
		return fmt.Errorf("%w: parent of %s", ErrNotFound, path)
	}
	s.sys.nodes[path] = append([]byte(nil), data...)
	if ephemeral {
		s.sys.owner[path] = s.id
	}
	return nil
}

func (s *memStore) setLocked(path string, data []byte) error {
	if _, ok := s.sys.nodes[path]; !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, path)
	}
	if !s.sys.dropSets {
		s.sys.nodes[path] = append([]byte(nil), data...)
	}
	return nil
}

func (s *memStore) Create(_ context.Context, path string, data []byte, ephemeral bool) error {
	if err := s.fault(); err != nil {
		return err
	}
	s.sys.mu.Lock()
	defer s.sys.mu.Unlock()
	return s.createLocked(path, data, ephemeral)
}

func (s *memStore) Set(_ context.Context, path string, data []byte) error {
	if err := s.fault(); err != nil {
		return err
	}
	s.sys.mu.Lock()
	defer s.sys.mu.Unlock()
	return s.setLocked(path, data)
}

func (s *memStore) Get(_ context.Context, path string, _ bool) ([]byte, error) {
	if err := s.fault(); err != nil {
		return nil, err
	}
	s.sys.mu.Lock()
	defer s.sys.mu.Unlock()
	v, ok := s.sys.nodes[path]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, path)
	}
	if s.sys.staleGets {
		return []byte("stale"), nil
	}
	return append([]byte(nil), v...), nil
}

func (s *memStore) Multi(_ context.Context, ops []Op) error {
	if err := s.fault(); err != nil {
		return err
	}
	s.sys.mu.Lock()
	defer s.sys.mu.Unlock()
	// Check everything first so a failing multi changes nothing.
	for _, op := range ops {
		_, exists := s.sys.nodes[op.Path]
		if op.Kind == OpCreate && exists || op.Kind == OpSet && !exists {
			return fmt.Errorf("multi: %w", ErrMismatch)
		}
	}
	for _, op := range ops {
		if op.Kind == OpCreate {
			_ = s.createLocked(op.Path, op.Data, false)
		} else {
			_ = s.setLocked(op.Path, op.Data)
		}
	}
	return nil
}

func (s *memStore) Sync(context.Context, string) error { return s.fault() }

func (s *memStore) Close(context.Context) error {
	s.sys.open.Add(-1)
	s.sys.mu.Lock()
	defer s.sys.mu.Unlock()
	for p, id := range s.sys.owner {
		if id == s.id {
			delete(s.sys.nodes, p)
			delete(s.sys.owner, p)
		}
	}
	return nil
}
