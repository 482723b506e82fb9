package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/arbor-db/arbor/client/bench"
)

// SessionTTL is the lease TTL of a Store's session, in seconds.
const SessionTTL = 10

// ErrConnect is returned when the client could not be created.
var ErrConnect = errors.New("etcd: could not connect")

// Store is a bench.Store over one etcd client.
type Store struct {
	c       *clientv3.Client
	session *concurrency.Session          // created by the first ephemeral create or lock
	mutexes map[string]*concurrency.Mutex // lock path -> this session's mutex, while held
	// election path -> this session's election, while it leads
	elections map[string]*concurrency.Election
}

var _ bench.Store = (*Store)(nil)

// Dial creates a client of the endpoints and checks it can reach them.
func Dial(ctx context.Context, endpoints []string) (bench.Store, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Context:     context.WithoutCancel(ctx),
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	// clientv3.New connects lazily: one read proves the cluster answers.
	if _, err := c.Get(ctx, "/", clientv3.WithSerializable(), clientv3.WithCountOnly()); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	return &Store{c: c, mutexes: map[string]*concurrency.Mutex{}, elections: map[string]*concurrency.Election{}}, nil
}

// Create puts path only if it has never been created (or was deleted).
func (s *Store) Create(ctx context.Context, path string, data []byte, ephemeral bool) error {
	var opts []clientv3.OpOption
	if ephemeral {
		sess, err := s.ensureSession(ctx)
		if err != nil {
			return err
		}
		opts = append(opts, clientv3.WithLease(sess.Lease()))
	}
	resp, err := s.c.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(path), "=", 0)).
		Then(clientv3.OpPut(path, string(data), opts...)).
		Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %s", bench.ErrExists, path)
	}
	return nil
}

// ensureSession returns the Store's session, creating it on first use: a
// lease of SessionTTL seconds that the session keeps alive.
func (s *Store) ensureSession(ctx context.Context) (*concurrency.Session, error) {
	if s.session == nil {
		sess, err := concurrency.NewSession(s.c, concurrency.WithTTL(SessionTTL), concurrency.WithContext(context.WithoutCancel(ctx)))
		if err != nil {
			return nil, fmt.Errorf("etcd: session: %w", err)
		}
		s.session = sess
	}
	return s.session, nil
}

// Set puts path.
func (s *Store) Set(ctx context.Context, path string, data []byte) error {
	_, err := s.c.Put(ctx, path, string(data))
	return err
}

// Get reads path, serializable when local.
func (s *Store) Get(ctx context.Context, path string, local bool) ([]byte, error) {
	var opts []clientv3.OpOption
	if local {
		opts = append(opts, clientv3.WithSerializable())
	}
	resp, err := s.c.Get(ctx, path, opts...)
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("%w: %s", bench.ErrNotFound, path)
	}
	return resp.Kvs[0].Value, nil
}

// Multi applies ops in one transaction; creates are guarded.
func (s *Store) Multi(ctx context.Context, ops []bench.Op) error {
	var (
		cmps []clientv3.Cmp
		puts []clientv3.Op
	)
	for _, op := range ops {
		if op.Kind == bench.OpCreate {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(op.Path), "=", 0))
		}
		puts = append(puts, clientv3.OpPut(op.Path, string(op.Data)))
	}
	resp, err := s.c.Txn(ctx).If(cmps...).Then(puts...).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: a created key exists", bench.ErrExists)
	}
	return nil
}

// Sync does a linearizable read: on etcd that brings the serving member's
// applied state up to the leader's commit, so later serializable reads
// through it see every earlier write.
func (s *Store) Sync(ctx context.Context, path string) error {
	_, err := s.c.Get(ctx, path, clientv3.WithCountOnly())
	return err
}

// Close revokes the session's lease (its keys go) and closes the client.
func (s *Store) Close(ctx context.Context) error {
	var err error
	if s.session != nil {
		err = s.session.Close()
	}
	return errors.Join(err, s.c.Close())
}
