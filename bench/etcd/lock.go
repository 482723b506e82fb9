package etcd

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/arbor-db/arbor/client/bench"
)

var _ bench.Locker = (*Store)(nil)

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
