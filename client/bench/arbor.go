package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/wire"
)

// ArborStore is a Store over one Arbor client session.
type ArborStore struct {
	c *client.Client
}

var (
	_ Store   = (*ArborStore)(nil)
	_ Locker  = (*ArborStore)(nil)
	_ Elector = (*ArborStore)(nil)
)

// ArborDialer returns DialAt for Env: each call opens a new session.
func ArborDialer(logger *slog.Logger) func(ctx context.Context, endpoints []string) (Store, error) {
	return ArborDialerWith(logger, 0)
}

// ArborDialerWith is ArborDialer with the session timeout to ask for (0:
// the client's default).
func ArborDialerWith(logger *slog.Logger, sessionTimeout time.Duration) func(ctx context.Context, endpoints []string) (Store, error) {
	return ArborDialerConfig(client.Config{Logger: logger, SessionTimeout: sessionTimeout})
}

// ArborDialerConfig is ArborDialer with every client dialled from cfg, its
// Endpoints replaced by those DialAt is given: cfg.InOrder keeps each
// session on the first of them that answers (a run pinned to one member),
// cfg.NoDiscovery keeps the clients to them.
func ArborDialerConfig(cfg client.Config) func(ctx context.Context, endpoints []string) (Store, error) {
	return func(ctx context.Context, endpoints []string) (Store, error) {
		cfg := cfg
		cfg.Endpoints = endpoints
		c, err := client.Dial(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("bench: arbor dial: %w", err)
		}
		return &ArborStore{c: c}, nil
	}
}

// arborErr maps the client's errors onto the ones workloads test for.
func arborErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, client.ErrNodeExists):
		return fmt.Errorf("%w: %w", ErrExists, err)
	case errors.Is(err, client.ErrNoNode):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, client.ErrSessionExpired):
		return fmt.Errorf("%w: %w", ErrSessionLost, err)
	}
	return err
}

// Create creates a persistent or ephemeral node.
func (s *ArborStore) Create(ctx context.Context, path string, data []byte, ephemeral bool) error {
	var opts []client.CreateOption
	if ephemeral {
		opts = append(opts, client.Ephemeral())
	}
	_, _, err := s.c.Create(ctx, path, data, opts...)
	return arborErr(err)
}

// Set sets path's data at any version.
func (s *ArborStore) Set(ctx context.Context, path string, data []byte) error {
	_, err := s.c.Set(ctx, path, data, client.AnyVersion)
	return arborErr(err)
}

// Get reads path, with client.Local() when local.
func (s *ArborStore) Get(ctx context.Context, path string, local bool) ([]byte, error) {
	var opts []client.ReadOption
	if local {
		opts = append(opts, client.Local())
	}
	data, _, err := s.c.Get(ctx, path, opts...)
	return data, arborErr(err)
}

// Multi applies ops in one multi.
func (s *ArborStore) Multi(ctx context.Context, ops []Op) error {
	cops := make([]client.Op, len(ops))
	for i, op := range ops {
		switch op.Kind {
		case OpCreate:
			cops[i] = client.OpCreate(op.Path, op.Data)
		case OpSet:
			cops[i] = client.OpSet(op.Path, op.Data, client.AnyVersion)
		}
	}
	_, err := s.c.Multi(ctx, cops...)
	return arborErr(err)
}

// Sync syncs the session with the leader.
func (s *ArborStore) Sync(ctx context.Context, path string) error {
	return arborErr(s.c.Sync(ctx, path))
}

// Close closes the session.
func (s *ArborStore) Close(ctx context.Context) error { return s.c.Close(ctx) }

// Lock takes the cluster's exclusive lock at path (the lock op, waiting
// for as long as ctx allows) and returns its token.
func (s *ArborStore) Lock(ctx context.Context, path string) (uint64, error) {
	forever := int64(-1)
	resp, err := s.c.Do(ctx, &wire.Request{Op: wire.OpLock, Path: path, WaitMs: &forever})
	if err != nil {
		return 0, arborErr(err)
	}
	if resp.Token == nil {
		return 0, fmt.Errorf("%w: lock of %s granted without a token", ErrMismatch, path)
	}
	return *resp.Token, nil
}

// Unlock releases the lock at path (the unlock op).
func (s *ArborStore) Unlock(ctx context.Context, path string) error {
	_, err := s.c.Do(ctx, &wire.Request{Op: wire.OpUnlock, Path: path})
	return arborErr(err)
}

// Campaign stands for election at path (the elect op, answered once this
// session leads).
func (s *ArborStore) Campaign(ctx context.Context, path string, value []byte) error {
	resp, err := s.c.Do(ctx, &wire.Request{Op: wire.OpElect, Path: path, Value: value})
	if err != nil {
		return arborErr(err)
	}
	if resp.Token == nil {
		return fmt.Errorf("%w: elected at %s without a token", ErrMismatch, path)
	}
	return nil
}

// Resign ends the candidacy at path (the resign op).
func (s *ArborStore) Resign(ctx context.Context, path string) error {
	_, err := s.c.Do(ctx, &wire.Request{Op: wire.OpResign, Path: path})
	return arborErr(err)
}

// SessionTimeout is the session's negotiated timeout.
func (s *ArborStore) SessionTimeout() time.Duration { return s.c.SessionTimeout() }
