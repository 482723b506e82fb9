package raftnode

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"go.etcd.io/raft/v3"
)

// readWaiter is one LinearizableRead call.
type readWaiter struct {
	done      chan error // buffered(1)
	index     uint64
	cancelled atomic.Bool
}

// readQueue batches ReadIndex requests: calls arriving while a ReadIndex is
// outstanding share the next one. Owned by the raft goroutine.
type readQueue struct {
	seq       uint64
	queue     []*readWaiter // waiting for the next ReadIndex
	inflight  []*readWaiter // waiting for the ReadState of request seq
	ticks     int           // ticks the inflight request has been waiting
	waitApply []*readWaiter // know their read index, wait for applied >= it
}

// LinearizableRead returns once this member has applied everything
// committed before the call, confirmed by the leader with a quorum
// (ReadIndex, ReadOnlySafe). When ctx ends without a known leader the error
// wraps both ErrNoLeader and ctx's error.
func (n *Node) LinearizableRead(ctx context.Context) error {
	w := &readWaiter{done: make(chan error, 1)}
	select {
	case n.readc <- w:
	case <-ctx.Done():
		return n.ctxErr(ctx)
	case <-n.done:
		return ErrStopped
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		w.cancelled.Store(true)
		return n.ctxErr(ctx)
	case <-n.done:
		return ErrStopped
	}
}

func (n *Node) ctxErr(ctx context.Context) error {
	if n.lead.Load() == raft.None {
		return fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
	}
	return ctx.Err()
}

func (n *Node) maybeIssueRead() {
	r := &n.reads
	if len(r.inflight) > 0 || len(r.queue) == 0 {
		return
	}
	live := r.queue[:0]
	for _, w := range r.queue {
		if !w.cancelled.Load() {
			live = append(live, w)
		}
	}
	r.queue = nil
	if len(live) == 0 {
		return
	}
	r.seq++
	r.inflight = live
	r.ticks = 0
	var ctx [8]byte
	binary.BigEndian.PutUint64(ctx[:], r.seq)
	// Raft drops the request silently without a leader; onTick retries.
	n.raw.ReadIndex(ctx[:])
}

// onTick re-issues a ReadIndex that got no answer within an election
// timeout (lost message, no leader, leader change).
func (n *Node) onTick() {
	r := &n.reads
	if len(r.inflight) == 0 {
		return
	}
	r.ticks++
	if r.ticks >= n.cfg.ElectionTicks {
		r.queue = append(r.inflight, r.queue...)
		r.inflight = nil
	}
}

func (n *Node) onReadStates(rss []raft.ReadState) {
	r := &n.reads
	for _, rs := range rss {
		if len(rs.RequestCtx) != 8 || binary.BigEndian.Uint64(rs.RequestCtx) != r.seq || len(r.inflight) == 0 {
			continue // a stale answer to a request already retried
		}
		for _, w := range r.inflight {
			w.index = rs.Index
		}
		r.waitApply = append(r.waitApply, r.inflight...)
		r.inflight = nil
	}
}

func (n *Node) releaseReads() {
	r := &n.reads
	keep := r.waitApply[:0]
	for _, w := range r.waitApply {
		if w.index <= n.applied {
			w.done <- nil
			continue
		}
		if !w.cancelled.Load() {
			keep = append(keep, w)
		}
	}
	clear(r.waitApply[len(keep):])
	r.waitApply = keep
}
