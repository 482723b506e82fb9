package etcd

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/arbor-db/arbor/client/bench"
)

var (
	_ bench.Locker  = (*Store)(nil)
	_ bench.Elector = (*Store)(nil)
)

// Lock takes the exclusive lock at path with etcd's own recipe,
// concurrency.Mutex, under the Store's session: a key path/LEASE with the
// session's lease, held once no key under path/ has a lower create
// revision; until then it watches only the key just before its own. The
// token is the key's create revision.
func (s *Store) Lock(ctx context.Context, path string) (uint64, error) {
	if _, ok := s.mutexes[path]; ok {
		return 0, fmt.Errorf("etcd: lock %s: already held by this session", path)
	}
	sess, err := s.ensureSession(ctx)
	if err != nil {
		return 0, err
	}
	m := concurrency.NewMutex(sess, path)
	if err := m.Lock(ctx); err != nil {
		return 0, fmt.Errorf("etcd: lock %s: %w", path, err)
	}
	s.mutexes[path] = m
	own := m.IsOwner()
	return uint64(own.GetCompare().GetCreateRevision()), nil
}

// Unlock deletes this session's key under path.
func (s *Store) Unlock(ctx context.Context, path string) error {
	m, ok := s.mutexes[path]
	if !ok {
		return fmt.Errorf("etcd: unlock %s: %w", path, concurrency.ErrLockReleased)
	}
	delete(s.mutexes, path)
	if err := m.Unlock(ctx); err != nil {
		return fmt.Errorf("etcd: unlock %s: %w", path, err)
	}
	return nil
}

// Campaign stands for election at path with concurrency.Election under
// the Store's session (the same key-per-lease recipe as the mutex; the
// leader is the lowest create revision), value being the key's value.
func (s *Store) Campaign(ctx context.Context, path string, value []byte) error {
	if _, ok := s.elections[path]; ok {
		return fmt.Errorf("etcd: campaign %s: already a candidate", path)
	}
	sess, err := s.ensureSession(ctx)
	if err != nil {
		return err
	}
	e := concurrency.NewElection(sess, path)
	if err := e.Campaign(ctx, string(value)); err != nil {
		return fmt.Errorf("etcd: campaign %s: %w", path, err)
	}
	s.elections[path] = e
	return nil
}

// Resign ends this session's leadership at path.
func (s *Store) Resign(ctx context.Context, path string) error {
	e, ok := s.elections[path]
	if !ok {
		return fmt.Errorf("etcd: resign %s: %w", path, concurrency.ErrElectionNotLeader)
	}
	delete(s.elections, path)
	if err := e.Resign(ctx); err != nil {
		return fmt.Errorf("etcd: resign %s: %w", path, err)
	}
	return nil
}

// SessionTimeout is the session lease's TTL.
func (s *Store) SessionTimeout() time.Duration { return SessionTTL * time.Second }
