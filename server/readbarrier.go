package server

import (
	"context"
	"sync"
	"time"
)

// readBatch is one round of the read barrier: every read that joined it is
// released when done is closed; err says whether the round succeeded.
type readBatch struct {
	done chan struct{}
	err  error // written before done is closed
}

// readBarrier batches linearizable reads: one goroutine (run) takes all
// reads that joined since the last round, confirms them with a single
// LinearizableRead, and releases them together. A read that joins while a
// round is in flight waits for the next round, because the ReadIndex of a
// round must be taken after every read in it arrived.
type readBarrier struct {
	read    func(ctx context.Context) error
	timeout time.Duration

	mu      sync.Mutex
	next    *readBatch    // the batch new reads join
	waiting bool          // next has members
	kick    chan struct{} // capacity 1: wakes run
}

func newReadBarrier(read func(context.Context) error, timeout time.Duration) *readBarrier {
	return &readBarrier{
		read:    read,
		timeout: timeout,
		next:    &readBatch{done: make(chan struct{})},
		kick:    make(chan struct{}, 1),
	}
}

// join adds a read to the next round and returns its batch.
func (b *readBarrier) join() *readBatch {
	b.mu.Lock()
	rb := b.next
	b.waiting = true
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	return rb
}

// run serves rounds until ctx is done, then fails the pending round.
func (b *readBarrier) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			b.mu.Lock()
			rb := b.next
			b.next = &readBatch{done: make(chan struct{})}
			b.mu.Unlock()
			rb.err = errShuttingDown
			close(rb.done)
			return nil
		case <-b.kick:
		}
		b.mu.Lock()
		if !b.waiting {
			b.mu.Unlock()
			continue
		}
		rb := b.next
		b.next = &readBatch{done: make(chan struct{})}
		b.waiting = false
		b.mu.Unlock()

		rctx, cancel := context.WithTimeout(ctx, b.timeout)
		rb.err = b.read(rctx)
		cancel()
		close(rb.done)
	}
}
