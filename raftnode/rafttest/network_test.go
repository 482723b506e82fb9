package rafttest

import (
	"context"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type recorder struct {
	mu      sync.Mutex
	msgs    []raftpb.Message
	arrived chan struct{} // one token per message, so tests wait without polling
}

func newRecorder() *recorder { return &recorder{arrived: make(chan struct{}, 64)} }

func (r *recorder) Step(_ context.Context, m raftpb.Message) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	select {
	case r.arrived <- struct{}{}:
	default:
	}
	return nil
}
func (r *recorder) ReportUnreachable(uint64)    {}
func (r *recorder) ReportSnapshot(uint64, bool) {}
func (r *recorder) OpenSnapshot(raftpb.Message) (io.ReadCloser, int64, error) {
	return nil, 0, io.EOF
}
func (r *recorder) ReceiveSnapshot(context.Context, raftpb.Message, io.Reader) error { return nil }

func (r *recorder) messages() []raftpb.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// await waits for the next message to arrive and returns everything
// recorded so far.
func (r *recorder) await(t *testing.T, what string) []raftpb.Message {
	t.Helper()
	select {
	case <-r.arrived:
	case <-time.After(5 * time.Second):
		t.Fatalf("no message within 5s: %s", what)
	}
	return r.messages()
}

// quiet fails the test if any message arrives within d.
func (r *recorder) quiet(t *testing.T, d time.Duration, what string) {
	t.Helper()
	select {
	case <-r.arrived:
		t.Fatalf("%s: got %v", what, r.messages())
	case <-time.After(d):
	}
}

func TestNetworkCopiesDuplicatesAndBlocks(t *testing.T) {
	nw := NewNetwork(1)
	a, b, c := nw.Endpoint(1), nw.Endpoint(2), nw.Endpoint(3)
	ra, rb, rc := newRecorder(), newRecorder(), newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range []struct {
		e *Endpoint
		r *recorder
	}{{a, ra}, {b, rb}, {c, rc}} {
		wg.Add(1)
		go func() { defer wg.Done(); p.e.Run(ctx, p.r) }()
	}
	defer func() { cancel(); wg.Wait() }()
	// Alive is true once every endpoint has registered with the network.
	for end := time.Now().Add(5 * time.Second); !a.Alive(2) || !a.Alive(3) || !b.Alive(1); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("endpoints not up within 5s")
		}
	}
	nw.SetFaults(0, 1, 0) // duplicate everything
	msg := raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Entries: []raftpb.Entry{{Index: 1, Data: []byte("x")}}}
	a.Send([]raftpb.Message{msg})
	msg.Entries[0].Data[0] = 'y' // the sender reuses its memory
	rb.await(t, "first copy")
	got := rb.await(t, "duplicate")
	first, second := got[0], got[1]
	if string(first.Entries[0].Data) != "x" || string(second.Entries[0].Data) != "x" {
		t.Fatal("network shared memory with the sender")
	}
	first.Entries[0].Data[0] = 'z'
	if string(second.Entries[0].Data) != "x" {
		t.Fatal("duplicates share memory")
	}

	// A one-way block: 2 -> 1 is dropped, 1 -> 2 and 3 -> 1 still flow.
	nw.SetFaults(0, 0, 0)
	nw.Block(2, 1)
	b.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 2, To: 1}})
	a.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
	if got := rb.await(t, "1 -> 2 while 2 -> 1 is blocked"); len(got) != 3 {
		t.Fatalf("2 got %d messages, want 3", len(got))
	}
	// Without delays a delivered message is in 1's inbox before Send
	// returns, and the inbox is FIFO: had 2's heartbeat got through, it
	// would be recorded before this marker from 3.
	c.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 3, To: 1}})
	if got := ra.await(t, "marker 3 -> 1"); len(got) != 1 || got[0].From != 3 {
		t.Fatalf("1 got %v, want only the marker from 3", got)
	}
	// And nothing comes later by some other path.
	ra.quiet(t, 100*time.Millisecond, "one-way block let a message through")
}
