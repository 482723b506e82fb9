package rafttest

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type recorder struct {
	mu   sync.Mutex
	msgs []raftpb.Message
}

func (r *recorder) Step(_ context.Context, m raftpb.Message) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	return nil
}
func (r *recorder) ReportUnreachable(uint64)    {}
func (r *recorder) ReportSnapshot(uint64, bool) {}
func (r *recorder) OpenSnapshot(raftpb.Message) (io.ReadCloser, int64, error) {
	return nil, 0, io.EOF
}
func (r *recorder) ReceiveSnapshot(context.Context, raftpb.Message, io.Reader) error { return nil }

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func TestNetworkCopiesDuplicatesAndBlocks(t *testing.T) {
	nw := NewNetwork(1)
	a, b := nw.Endpoint(1), nw.Endpoint(2)
	ra, rb := &recorder{}, &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range []struct {
		e *Endpoint
		r *recorder
	}{{a, ra}, {b, rb}} {
		wg.Add(1)
		go func() { defer wg.Done(); p.e.Run(ctx, p.r) }()
	}
	defer func() { cancel(); wg.Wait() }()
	for !a.Alive(2) || !b.Alive(1) {
		time.Sleep(time.Millisecond)
	}
	nw.SetFaults(0, 1, 0) // duplicate everything
	msg := raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Entries: []raftpb.Entry{{Index: 1, Data: []byte("x")}}}
	a.Send([]raftpb.Message{msg})
	msg.Entries[0].Data[0] = 'y' // the sender reuses its memory
	for rb.count() < 2 {
		time.Sleep(time.Millisecond)
	}
	rb.mu.Lock()
	first, second := rb.msgs[0], rb.msgs[1]
	rb.mu.Unlock()
	if string(first.Entries[0].Data) != "x" || string(second.Entries[0].Data) != "x" {
		t.Fatal("network shared memory with the sender")
	}
	first.Entries[0].Data[0] = 'z'
	if string(second.Entries[0].Data) != "x" {
		t.Fatal("duplicates share memory")
	}
	nw.SetFaults(0, 0, 0)
	nw.Block(2, 1)
	b.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 2, To: 1}})
	a.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
	for rb.count() < 3 {
		time.Sleep(time.Millisecond)
	}
	if ra.count() != 0 {
		t.Fatal("one-way block let a message through")
	}
}
