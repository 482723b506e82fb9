package rafttest

import (
	"context"
	"math/rand"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/arbor-db/arbor/raftnode"
)

// Network is an in-memory raft network with a fault injector. Every message
// is deep-copied on Send, so held, delayed or duplicated messages never
// share memory with the sender.
type Network struct {
	mu       sync.Mutex
	rng      *rand.Rand
	eps      map[uint64]*Endpoint
	blocked  map[[2]uint64]bool
	starved  map[[2]uint64]bool
	dropRate float64
	dupRate  float64
	maxDelay time.Duration
	wg       sync.WaitGroup // snapshot transfers
}

// NewNetwork returns a fault-free network whose random choices follow seed.
func NewNetwork(seed int64) *Network {
	return &Network{rng: rand.New(rand.NewSource(seed)), eps: map[uint64]*Endpoint{}, blocked: map[[2]uint64]bool{}, starved: map[[2]uint64]bool{}}
}

// Endpoint returns a new transport for member id (one per incarnation).
func (nw *Network) Endpoint(id uint64) *Endpoint {
	return &Endpoint{nw: nw, id: id, inbox: make(chan raftnode.Message, 4096), lastSeen: map[uint64]time.Time{}}
}

// Block drops messages from -> to (one way).
func (nw *Network) Block(from, to uint64) {
	nw.mu.Lock()
	nw.blocked[[2]uint64{from, to}] = true
	nw.mu.Unlock()
}

// Starve drops the log appends from -> to (one way) and lets every other
// message through: the receiver keeps its leader, as heartbeats reach it,
// but falls behind, until it needs a snapshot.
func (nw *Network) Starve(from, to uint64) {
	nw.mu.Lock()
	nw.starved[[2]uint64{from, to}] = true
	nw.mu.Unlock()
}

// Heal removes every block and starvation.
func (nw *Network) Heal() {
	nw.mu.Lock()
	clear(nw.blocked)
	clear(nw.starved)
	nw.mu.Unlock()
}

// SetFaults sets the drop and duplicate probabilities and the maximum
// random delivery delay (which also reorders).
func (nw *Network) SetFaults(drop, dup float64, maxDelay time.Duration) {
	nw.mu.Lock()
	nw.dropRate, nw.dupRate, nw.maxDelay = drop, dup, maxDelay
	nw.mu.Unlock()
}

// Wait blocks until in-flight snapshot transfers end.
func (nw *Network) Wait() { nw.wg.Wait() }

func (nw *Network) route(from *Endpoint, m raftnode.Message) {
	nw.mu.Lock()
	to := nw.eps[m.To]
	link := [2]uint64{m.From, m.To}
	if to == nil || nw.blocked[link] || (nw.starved[link] && m.Type == raftpb.MsgApp) || nw.rng.Float64() < nw.dropRate {
		nw.mu.Unlock()
		if raftnode.IsSnapshotMessage(m) {
			from.handler().ReportSnapshot(m.To, true)
		}
		return
	}
	if raftnode.IsSnapshotMessage(m) {
		nw.wg.Add(1)
		nw.mu.Unlock()
		go nw.transferSnapshot(from, to, m)
		return
	}
	copies := 1
	if nw.rng.Float64() < nw.dupRate {
		copies = 2
	}
	delays := make([]time.Duration, copies)
	for i := range delays {
		if nw.maxDelay > 0 {
			delays[i] = time.Duration(nw.rng.Int63n(int64(nw.maxDelay)))
		}
	}
	nw.mu.Unlock()
	for _, d := range delays {
		// Every copy is a deep copy: the sender's raft keeps using the
		// slices of m, and the receiver's raft writes into what it gets.
		c := raftnode.CloneMessage(m)
		if d == 0 {
			nw.deliver(to, c)
		} else {
			time.AfterFunc(d, func() { nw.deliver(to, c) })
		}
	}
}

// deliver re-checks partitions, so a delayed message does not cross one
// installed after it was sent.
func (nw *Network) deliver(to *Endpoint, m raftnode.Message) {
	nw.mu.Lock()
	blocked := nw.blocked[[2]uint64{m.From, m.To}]
	nw.mu.Unlock()
	if blocked {
		return
	}
	to.mu.Lock()
	to.lastSeen[m.From] = time.Now()
	to.mu.Unlock()
	select {
	case to.inbox <- m:
	default:
	}
}

func (nw *Network) transferSnapshot(from, to *Endpoint, m raftnode.Message) {
	defer nw.wg.Done()
	h := from.handler()
	rc, _, err := h.OpenSnapshot(m)
	if err != nil {
		h.ReportSnapshot(m.To, true)
		return
	}
	defer rc.Close()
	th, ctx := to.handlerCtx()
	err = th.ReceiveSnapshot(ctx, m, rc)
	h.ReportSnapshot(m.To, err != nil)
}

// Endpoint is one member's raftnode.Transport on a Network.
type Endpoint struct {
	nw       *Network
	id       uint64
	inbox    chan raftnode.Message
	mu       sync.Mutex
	h        raftnode.TransportHandler
	ctx      context.Context
	lastSeen map[uint64]time.Time
}

var _ raftnode.Transport = (*Endpoint)(nil)

func (e *Endpoint) handler() raftnode.TransportHandler {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.h
}

func (e *Endpoint) handlerCtx() (raftnode.TransportHandler, context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.h, e.ctx
}

// Run implements raftnode.Transport.
func (e *Endpoint) Run(ctx context.Context, h raftnode.TransportHandler) error {
	e.mu.Lock()
	e.h, e.ctx = h, ctx
	e.mu.Unlock()
	e.nw.mu.Lock()
	e.nw.eps[e.id] = e
	e.nw.mu.Unlock()
	defer func() {
		e.nw.mu.Lock()
		if e.nw.eps[e.id] == e {
			delete(e.nw.eps, e.id)
		}
		e.nw.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-e.inbox:
			if h.Step(ctx, m) != nil {
				return nil
			}
		}
	}
}

// Send implements raftnode.Transport.
func (e *Endpoint) Send(msgs []raftnode.Message) {
	for _, m := range msgs {
		e.nw.route(e, raftnode.CloneMessage(m))
	}
}

// AddPeer implements raftnode.Transport; the network routes by id.
func (e *Endpoint) AddPeer(uint64, string) {}

// RemovePeer implements raftnode.Transport.
func (e *Endpoint) RemovePeer(uint64) {}

// Alive implements raftnode.Transport: a message from id arrived recently,
// or id is running and reachable (like an established TCP stream).
func (e *Endpoint) Alive(id uint64) bool {
	e.nw.mu.Lock()
	_, up := e.nw.eps[id]
	up = up && !e.nw.blocked[[2]uint64{e.id, id}]
	e.nw.mu.Unlock()
	if up {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.lastSeen[id]
	return ok && time.Since(t) < 3*time.Second
}
