package zk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/arbor-db/arbor/client/bench"
)

// SessionTimeout is the session timeout asked of ZooKeeper.
const SessionTimeout = 10 * time.Second

// ErrConnect is returned when no session could be established.
var ErrConnect = errors.New("zk: could not connect")

// Store is a bench.Store over one ZooKeeper session.
type Store struct {
	conn  *gozk.Conn
	locks map[string]string // lock path -> this session's node under it, while held
}

var _ bench.Store = (*Store)(nil)

var acl = gozk.WorldACL(gozk.PermAll)

// silent drops go-zookeeper's own logging (it logs every reconnect).
var silent = log.New(io.Discard, "", 0)

// Dial opens a session with the servers and waits until it is established.
func Dial(ctx context.Context, servers []string) (bench.Store, error) {
	conn, events, err := gozk.Connect(servers, SessionTimeout, gozk.WithLogger(silent))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	for {
		select {
		case ev := <-events:
			if ev.State == gozk.StateHasSession {
				go drain(events)
				return &Store{conn: conn, locks: map[string]string{}}, nil
			}
		case <-ctx.Done():
			conn.Close()
			return nil, fmt.Errorf("%w: %w", ErrConnect, ctx.Err())
		}
	}
}

// drain keeps reading the session's events, which the library would
// otherwise block on; it ends when Close closes the channel.
func drain(events <-chan gozk.Event) {
	for ev := range events {
		_ = ev
	}
}

// mapErr maps ZooKeeper's errors onto the ones workloads test for.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gozk.ErrNodeExists):
		return fmt.Errorf("%w: %w", bench.ErrExists, err)
	case errors.Is(err, gozk.ErrNoNode):
		return fmt.Errorf("%w: %w", bench.ErrNotFound, err)
	}
	return err
}

// run runs f, giving up (not the library) when ctx ends: go-zookeeper
// has no context support.
func run[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type res struct {
		v   T
		err error
	}
	ch := make(chan res, 1)
	go func() {
		v, err := f()
		ch <- res{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, mapErr(r.err)
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// Create creates a persistent or ephemeral node.
func (s *Store) Create(ctx context.Context, path string, data []byte, ephemeral bool) error {
	var flags int32
	if ephemeral {
		flags = gozk.FlagEphemeral
	}
	_, err := run(ctx, func() (string, error) { return s.conn.Create(path, data, flags, acl) })
	return err
}

// Set sets data at any version.
func (s *Store) Set(ctx context.Context, path string, data []byte) error {
	_, err := run(ctx, func() (*gozk.Stat, error) { return s.conn.Set(path, data, -1) })
	return err
}

// Get reads path; not local means sync first.
func (s *Store) Get(ctx context.Context, path string, local bool) ([]byte, error) {
	return run(ctx, func() ([]byte, error) {
		if !local {
			if _, err := s.conn.Sync(path); err != nil {
				return nil, err
			}
		}
		data, _, err := s.conn.Get(path)
		return data, err
	})
}

// Multi applies ops in one ZooKeeper multi.
func (s *Store) Multi(ctx context.Context, ops []bench.Op) error {
	reqs := make([]any, len(ops))
	for i, op := range ops {
		switch op.Kind {
		case bench.OpCreate:
			reqs[i] = &gozk.CreateRequest{Path: op.Path, Data: op.Data, Acl: acl}
		case bench.OpSet:
			reqs[i] = &gozk.SetDataRequest{Path: op.Path, Data: op.Data, Version: -1}
		}
	}
	_, err := run(ctx, func() ([]gozk.MultiResponse, error) { return s.conn.Multi(reqs...) })
	return err
}

// Sync syncs the connected server with the leader.
func (s *Store) Sync(ctx context.Context, path string) error {
	_, err := run(ctx, func() (string, error) { return s.conn.Sync(path) })
	return err
}

// Close closes the session (its ephemerals go).
func (s *Store) Close(context.Context) error {
	s.conn.Close()
	return nil
}
