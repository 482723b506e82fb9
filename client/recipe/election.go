package recipe

import (
	"context"
	"sync"

	"github.com/arbor-db/arbor/client"
)

// Election is leader election on a path: candidates queue in order, the
// earliest leads, and the next takes over in the same replicated step when
// the leader resigns or its session ends. The leader's value (an address,
// say) is what Leader and Observe report.
//
// As with Mutex, a leader can lose the leadership without resigning (its
// session may expire while it is paused or cut off): Lost is closed as
// soon as that may have happened, before the cluster can elect anyone
// else. Stop acting as leader then, and pass Token to what the leader
// writes to, so that a write that comes too late anyway is refused.
type Election struct {
	c    *client.Client
	path string

	mu sync.Mutex
	h  *held
}

// NewElection returns the election at path.
func NewElection(c *client.Client, path string) *Election {
	return &Election{c: c, path: path}
}

// Campaign blocks until this session leads, or ctx ends (then the
// candidacy is withdrawn). Campaigning again while a candidate or leader
// goes on with the same candidacy.
func (e *Election) Campaign(ctx context.Context, value []byte) error {
	g, err := acquire(ctx, e.c, false, func(ctx context.Context) (client.Grant, error) { return e.c.Elect(ctx, e.path, value) })
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h != nil {
		e.h.release()
	}
	e.h = hold(e.c, g)
	return nil
}

// Resign ends the leadership (or candidacy) so that the next candidate
// leads.
func (e *Election) Resign(ctx context.Context) error {
	e.mu.Lock()
	h := e.h
	e.h = nil
	e.mu.Unlock()
	if h != nil {
		h.release()
	}
	return e.c.Resign(ctx, e.path)
}

// Token returns the fencing token of the leadership (0 when not leading).
func (e *Election) Token() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h == nil {
		return 0
	}
	return e.h.grant.Token
}

// Lost returns a channel closed when the leadership may be lost; nil when
// not leading.
func (e *Election) Lost() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h == nil {
		return nil
	}
	return e.h.lost
}

// Leader returns the current leader, or nil when there is none.
func (e *Election) Leader(ctx context.Context) (*client.LeaderInfo, error) {
	return e.c.Leader(ctx, e.path)
}

// Observe reports every leader of the election once, in order, starting
// with the current one (no report while there is none), until ctx ends or
// the client does; then the channel is closed. Each report is the leader
// as it stood when read: a leadership that begins and ends between two
// reads (quicker than a round trip) is not seen, and a reader that falls
// behind holds the next read back rather than building a backlog.
func (e *Election) Observe(ctx context.Context) <-chan client.LeaderInfo {
	out := make(chan client.LeaderInfo)
	go func() {
		defer close(out)
		var last uint64
		var lastValue string
		for ctx.Err() == nil && !e.c.Expired() {
			var ev <-chan client.WatchEvent
			l, err := e.c.Leader(ctx, e.path, client.WatchOnce(&ev))
			if err != nil {
				return
			}
			if l != nil && (l.Token != last || string(l.Value) != lastValue) {
				last, lastValue = l.Token, string(l.Value)
				select {
				case out <- *l:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-ev:
			case <-ctx.Done():
			}
		}
	}()
	return out
}
