package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/arbor-db/arbor/tree"
)

// applyResult is what applying one command gives the request waiting for it.
type applyResult struct {
	Zxid    uint64
	Results []tree.Result // TreeOps: one per op
	Session uint64        // CreateSession: the new session id
	Reaped  int           // Reap: nodes deleted
	Granted bool          // Lock: the child in Results[0] holds at Zxid
	Err     error         // a tree error, errSessionExpired, ...
	Refused error         // raft refused the proposal: nothing was applied
	staleHW uint64        // with errStaleOrigin: the origin's applied seq
}

// waitRegistry hands apply results to the requests that proposed them, as
// etcd's pkg/wait: a request registers its origin before proposing, the
// apply goroutine triggers it, and a request that gives up cancels it.
type waitRegistry struct {
	mu sync.Mutex
	m  map[origin]waiter
	// leader reports the raft leader now; each waiter remembers the leader
	// it was proposed under. Set before the server starts.
	leader func() uint64
}

type waiter struct {
	ch     chan applyResult
	leader uint64
}

func newWaitRegistry() *waitRegistry {
	return &waitRegistry{m: make(map[origin]waiter), leader: func() uint64 { return 0 }}
}

// register returns the channel that will receive the result for o.
func (w *waitRegistry) register(o origin) <-chan applyResult {
	ch := make(chan applyResult, 1)
	lead := w.leader()
	w.mu.Lock()
	w.m[o] = waiter{ch: ch, leader: lead}
	w.mu.Unlock()
	return ch
}

// trigger delivers r to the waiter of o, if any. It never blocks.
func (w *waitRegistry) trigger(o origin, r applyResult) {
	w.mu.Lock()
	wt, ok := w.m[o]
	delete(w.m, o)
	w.mu.Unlock()
	if ok {
		wt.ch <- r
	}
}

// failProposedUnder refuses every waiter proposed while lead was leader:
// a proposal forwarded to a leader that is gone is usually lost, and its
// client should learn so now, not at its deadline. The write may still
// commit, so the error says the outcome is unknown.
func (w *waitRegistry) failProposedUnder(lead uint64) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for o, wt := range w.m {
		if wt.leader == lead {
			delete(w.m, o)
			wt.ch <- applyResult{Refused: errLeaderChanged}
			n++
		}
	}
	return n
}

// cancel forgets the waiter of o (timeout, dropped proposal).
func (w *waitRegistry) cancel(o origin) {
	w.mu.Lock()
	delete(w.m, o)
	w.mu.Unlock()
}

var (
	errLeaderChanged = errors.New("server: the leader changed while the write was in flight")
	errStaleOrigin   = errors.New("server: the write reached the log behind a later write of this member and was not applied")
)

// watchLeader fails the writes proposed under a leader as soon as this
// member sees that leader go (see failProposedUnder). It polls: leader
// changes are rare and a few milliseconds late is fine.
func (s *server) watchLeader(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	last := s.rep.Status().Leader
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lead := s.rep.Status().Leader
		if lead == last {
			continue
		}
		if last != 0 {
			if n := s.waits.failProposedUnder(last); n > 0 {
				s.log.Info("leader changed: failed in-flight writes as indeterminate", "old_leader", last, "new_leader", lead, "writes", n)
			}
		}
		last = lead
	}
}

// submit stamps cmd with this member's next origin and the time, registers
// its waiter and hands it to raft. It holds proposeMu throughout so that
// this member's commands enter raft in the order of their seqs: the state
// machine applies an origin's commands only in increasing seq order (see
// stateMachine.origins), which makes a duplicated or reordered proposal
// harmless.
func (s *server) submit(ctx context.Context, cmd *command) (<-chan applyResult, error) {
	return s.submitIn(ctx, 0, cmd)
}

// submitIn is submit for a decision of the leader of term (0: anyone's):
// the command goes into the log only while this member leads in term.
func (s *server) submitIn(ctx context.Context, term uint64, cmd *command) (<-chan applyResult, error) {
	if v := cmd.Type.minClusterVersion(); v > s.sm.clusterVersion.Load() {
		return nil, fmt.Errorf("%w: command kind %d needs cluster version %d, the cluster runs %d", errVersionGate, cmd.Type, v, s.sm.clusterVersion.Load())
	}
	s.proposeMu.Lock()
	defer s.proposeMu.Unlock()
	cmd.Origin = origin{Member: s.id, Seq: s.seq.Add(1)}
	cmd.TimeMs = time.Now().UnixMilli()
	o := cmd.Origin
	wait := s.waits.register(o)
	done := func(err error) {
		if err != nil {
			s.waits.trigger(o, applyResult{Refused: err})
		}
	}
	var err error
	if term != 0 {
		err = s.rep.ProposeAsLeader(ctx, term, cmd.encode(nil), done)
	} else {
		err = s.rep.ProposeAsync(ctx, cmd.encode(nil), done)
	}
	if err != nil {
		s.waits.cancel(o)
		return nil, err
	}
	return wait, nil
}

// noteStaleOrigin moves this member's seq past hw when the state machine
// refused one of its commands as stale, as after a clock step back across a
// restart (seqs start at the clock): the next write gets through.
func (s *server) noteStaleOrigin(member, hw uint64) {
	if member != s.id {
		return
	}
	for {
		cur := s.seq.Load()
		if cur >= hw || s.seq.CompareAndSwap(cur, hw) {
			return
		}
	}
}
