package client

import (
	"context"
	"errors"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// Grant is a lock or leadership held by this session.
type Grant struct {
	Path string // the lock or election path
	Node string // the child of Path that holds it
	// Token is the fencing token: the czxid of Node. It grows with every
	// grant of the same path, so the resource a lock guards can refuse a
	// write that carries a lower token than one it has seen (package
	// fence).
	Token uint64
	Zxid  uint64 // the zxid at which it was granted (or found held)
}

// LockOption modifies a lock.
type LockOption func(*wire.Request)

// Shared asks for a read lock: shared with other readers, exclusive of
// writers.
func Shared() LockOption { return func(r *wire.Request) { r.Shared = true } }

// WaitAtMost bounds how long the server queues the request (wait_ms). When
// it runs out the server withdraws the request and Lock fails with
// ErrTimeout. WaitAtMost(0) tries once, without queueing. Without it the
// request waits until granted, or until ctx ends.
func WaitAtMost(d time.Duration) LockOption {
	return func(r *wire.Request) {
		ms := d.Milliseconds()
		if d > 0 && ms == 0 {
			ms = 1
		}
		r.WaitMs = &ms
	}
}

// withdrawTimeout bounds the unlock Lock sends when its caller gives up.
const withdrawTimeout = 5 * time.Second

// Lock takes the lock at path for this session (exclusive unless Shared)
// and returns once it is granted. The lock is held until Unlock, or until
// the session ends (then the cluster releases it: watch Context, which ends
// at jeopardy, to stop acting on it in time). A session holds at most one
// place per lock path: calling Lock again while holding or waiting goes on
// with the same place (after a lost connection, that is how to find out
// where the request stands).
//
// If ctx ends first, Lock withdraws the request (an Unlock) and returns
// ctx's error. A lost connection returns an Indeterminate error: the
// session may be queued or even hold the lock; call Lock again to go on,
// or Unlock to give up.
func (c *Client) Lock(ctx context.Context, path string, opts ...LockOption) (Grant, error) {
	req := wire.Request{Op: wire.OpLock, Path: path}
	for _, o := range opts {
		o(&req)
	}
	return c.queue(ctx, &req, wire.OpUnlock)
}

// Unlock releases this session's lock at path, or withdraws its waiting
// request. It fails with ErrNotHeld when the session has neither.
func (c *Client) Unlock(ctx context.Context, path string) error {
	_, err := c.Do(ctx, &wire.Request{Op: wire.OpUnlock, Path: path})
	return err
}

// Elect makes this session a candidate in the election at path with value
// (what Leader reports while it leads) and returns once it is the leader.
// It leads until Resign or the end of the session. As Lock, a second Elect
// goes on with the same candidacy, and an ended ctx withdraws it.
func (c *Client) Elect(ctx context.Context, path string, value []byte) (Grant, error) {
	if value == nil {
		value = []byte{}
	}
	return c.queue(ctx, &wire.Request{Op: wire.OpElect, Path: path, Value: value}, wire.OpResign)
}

// Resign ends this session's candidacy (or leadership) at path. It fails
// with ErrNotHeld when the session is not a candidate there.
func (c *Client) Resign(ctx context.Context, path string) error {
	_, err := c.Do(ctx, &wire.Request{Op: wire.OpResign, Path: path})
	return err
}

// queue sends a lock or elect and, if the caller gives up first, withdraws
// it with undo so that the cluster does not grant it to nobody.
func (c *Client) queue(ctx context.Context, req *wire.Request, undo string) (Grant, error) {
	resp, err := c.Do(ctx, req)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ErrClosed) && !c.Expired() {
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), withdrawTimeout)
			_, _ = c.Do(wctx, &wire.Request{Op: undo, Path: req.Path})
			cancel()
		}
		return Grant{}, err
	}
	g := Grant{Path: req.Path, Node: resp.Node, Zxid: resp.Zxid}
	if resp.Token != nil {
		g.Token = *resp.Token
	}
	return g, nil
}

// LeaderInfo is the current leader of an election.
type LeaderInfo struct {
	Value   []byte
	Session string
	Token   uint64 // the leader's fencing token (its candidacy's czxid)
}

// Leader returns the current leader of the election at path, or nil when
// there is none. With WatchOnce the channel gets one event at the first
// change that may change the answer (the leader's resignation or end, a
// new value, a first candidate); ask again then.
func (c *Client) Leader(ctx context.Context, path string, opts ...ReadOption) (*LeaderInfo, error) {
	resp, err := c.read(ctx, wire.OpLeader, path, opts)
	if err != nil {
		return nil, err
	}
	if resp.Token == nil {
		return nil, nil
	}
	return &LeaderInfo{Value: resp.Value, Session: resp.Session, Token: *resp.Token}, nil
}
