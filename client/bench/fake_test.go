package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
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

	watches   []*memWatch
	events    int // persistent watch events fired, for dropEvery
	dropEvery int // drop every dropEvery-th persistent watch event

	locks  map[string]*memLock
	tokens uint64 // the last lock token handed out

	sessionTimeout time.Duration // what every session says its timeout is

	dropSets    bool // acknowledge sets without applying them
	staleGets   bool // answer gets with a wrong value
	staleTokens bool // grant every lock with token 1
	failEvery   int64
	calls       atomic.Int64
}

func newMemSystem() *memSystem {
	return &memSystem{nodes: map[string][]byte{"/": nil}, owner: map[string]int64{}, locks: map[string]*memLock{}, sessionTimeout: 3 * time.Second}
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
	s.sys.notifyLocked(path, data)
	return nil
}

func (s *memStore) setLocked(path string, data []byte) error {
	if _, ok := s.sys.nodes[path]; !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, path)
	}
	if !s.sys.dropSets {
		s.sys.nodes[path] = append([]byte(nil), data...)
		s.sys.notifyLocked(path, data)
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
	s.sys.dropWatchesLocked(s.id)
	for _, l := range s.sys.locks {
		if l.holder == s.id {
			l.holder = 0
			<-l.sem
		}
	}
	return nil
}

// memLock is an exclusive lock of a memSystem: a semaphore of one.
type memLock struct {
	sem    chan struct{}
	holder int64 // session holding it, 0 when free; under memSystem.mu
}

var errNotHeld = errors.New("mem: lock not held")

func (s *memStore) Lock(ctx context.Context, path string) (uint64, error) {
	if err := s.fault(); err != nil {
		return 0, err
	}
	s.sys.mu.Lock()
	l := s.sys.locks[path]
	if l == nil {
		l = &memLock{sem: make(chan struct{}, 1)}
		s.sys.locks[path] = l
	}
	s.sys.mu.Unlock()
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	s.sys.mu.Lock()
	defer s.sys.mu.Unlock()
	l.holder = s.id
	s.sys.tokens++
	if s.sys.staleTokens {
		return 1, nil
	}
	return s.sys.tokens, nil
}

func (s *memStore) Unlock(_ context.Context, path string) error {
	if err := s.fault(); err != nil {
		return err
	}
	s.sys.mu.Lock()
	defer s.sys.mu.Unlock()
	l := s.sys.locks[path]
	if l == nil || l.holder != s.id {
		return fmt.Errorf("%w: %s", errNotHeld, path)
	}
	l.holder = 0
	<-l.sem
	return nil
}

// held returns the session holding the lock at path, 0 if none.
func (m *memSystem) held(path string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.locks[path]; l != nil {
		return l.holder
	}
	return 0
}

// An election of a memSystem is its lock: the first candidate leads.
func (s *memStore) Campaign(ctx context.Context, path string, _ []byte) error {
	_, err := s.Lock(ctx, "elect:"+path)
	return err
}

func (s *memStore) Resign(ctx context.Context, path string) error {
	return s.Unlock(ctx, "elect:"+path)
}

func (s *memStore) SessionTimeout() time.Duration { return s.sys.sessionTimeout }
