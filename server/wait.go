package server

import (
	"sync"

	"github.com/arbor-db/arbor/tree"
)

// applyResult is what applying one command gives the request waiting for it.
type applyResult struct {
	Zxid    uint64
	Results []tree.Result // TreeOps: one per op
	Session uint64        // CreateSession: the new session id
	Err     error         // a tree error, errSessionExpired, ...
	Refused error         // raft refused the proposal: nothing was applied
}

// waitRegistry hands apply results to the requests that proposed them, as
// etcd's pkg/wait: a request registers its origin before proposing, the
// apply goroutine triggers it, and a request that gives up cancels it.
type waitRegistry struct {
	mu sync.Mutex
	m  map[origin]chan applyResult
}

func newWaitRegistry() *waitRegistry {
	return &waitRegistry{m: make(map[origin]chan applyResult)}
}

// register returns the channel that will receive the result for o.
func (w *waitRegistry) register(o origin) <-chan applyResult {
	ch := make(chan applyResult, 1)
	w.mu.Lock()
	w.m[o] = ch
	w.mu.Unlock()
	return ch
}

// trigger delivers r to the waiter of o, if any. It never blocks.
func (w *waitRegistry) trigger(o origin, r applyResult) {
	w.mu.Lock()
	ch, ok := w.m[o]
	delete(w.m, o)
	w.mu.Unlock()
	if ok {
		ch <- r
	}
}

// cancel forgets the waiter of o (timeout, dropped proposal).
func (w *waitRegistry) cancel(o origin) {
	w.mu.Lock()
	delete(w.m, o)
	w.mu.Unlock()
}
