package raftnode

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

type nopHandler struct{}

func (nopHandler) Step(context.Context, Message) error { return nil }
func (nopHandler) ReportUnreachable(uint64)            {}
func (nopHandler) ReportSnapshot(uint64, bool)         {}
func (nopHandler) OpenSnapshot(Message) (io.ReadCloser, int64, error) {
	return nil, 0, errors.New("none")
}
func (nopHandler) ReceiveSnapshot(context.Context, Message, io.Reader) error { return nil }

func TestTCPHandshakeRejectsWrongClusterAndTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	server := newTCPTransport(1, Config{ClusterToken: "a", PeerListener: ln}, log)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); server.Run(ctx, nopHandler{}) }()
	defer func() { cancel(); wg.Wait() }()

	addr := ln.Addr().String()
	wrongCluster := newTCPTransport(2, Config{ClusterToken: "b"}, log)
	if _, err := wrongCluster.dial(ctx, &tcpPeer{id: 1, addr: addr}); !errors.Is(err, ErrHandshake) {
		t.Fatalf("wrong cluster: %v", err)
	}
	right := newTCPTransport(2, Config{ClusterToken: "a"}, log)
	if _, err := right.dial(ctx, &tcpPeer{id: 7, addr: addr}); !errors.Is(err, ErrHandshake) {
		t.Fatalf("wrong target id: %v", err)
	}
	conn, err := right.dial(ctx, &tcpPeer{id: 1, addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

func TestReadFrameRejectsOversizedLengthBeforeAllocating(t *testing.T) {
	hdr := []byte{frameMsg, 0xff, 0xff, 0xff, 0xff}
	if _, _, err := readFrame(bytes.NewReader(hdr)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v", err)
	}
}

// recordingHandler keeps what it is handed, slowly at first: the sender's
// socket fills, so its non-blocking writes come back short and the peer's
// writer has to take the rest.
type recordingHandler struct {
	nopHandler
	mu   sync.Mutex
	got  []Message
	slow chan struct{} // closed: stop dawdling
}

func (h *recordingHandler) Step(ctx context.Context, m Message) error {
	select {
	case <-h.slow:
	case <-time.After(time.Millisecond):
	}
	h.mu.Lock()
	h.got = append(h.got, m)
	h.mu.Unlock()
	return nil
}

func (h *recordingHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

// Messages written partly by the raft goroutine's non-blocking writes and
// partly by the peer's writer arrive whole and in order.
func TestTCPSendSplitsBetweenDirectWritesAndTheWriter(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	recv := &recordingHandler{slow: make(chan struct{})}
	to := newTCPTransport(1, Config{ClusterToken: "a", PeerListener: ln}, log)
	from := newTCPTransport(2, Config{ClusterToken: "a"}, log)
	from.AddPeer(1, ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); to.Run(ctx, recv) }()
	go func() { defer wg.Done(); from.Run(ctx, nopHandler{}) }()
	defer func() { cancel(); wg.Wait() }()

	p := from.peers[1]
	connected := func() bool {
		p.wmu.Lock()
		defer p.wmu.Unlock()
		return p.out.raw != nil
	}
	for deadline := time.Now().Add(5 * time.Second); !connected(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("never connected")
		}
	}
	const n = 400
	payload := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	short := 0
	for i := range n {
		m := proposalMessage(2, [][]byte{payload})
		m.To, m.Index = 1, uint64(i+1)
		// As the raft goroutine does: within the queue's bound, or raft's
		// retries would be what delivers them.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Microsecond) {
			p.wmu.Lock()
			frames := p.out.frames
			p.wmu.Unlock()
			if frames < peerQueueLen/2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the writer does not drain the queue")
			}
		}
		from.Send([]Message{m})
		p.wmu.Lock()
		if len(p.out.pending) > 0 {
			short++
		}
		p.wmu.Unlock()
		if i == n/2 {
			close(recv.slow)
		}
	}
	for deadline := time.Now().Add(20 * time.Second); recv.count() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages arrived", recv.count(), n)
		}
	}
	if short == 0 {
		t.Fatal("every write went through at once: the writer's part was not exercised")
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	for i, m := range recv.got {
		if m.Index != uint64(i+1) || len(m.Entries) != 1 || !bytes.Equal(m.Entries[0].Data, payload) {
			t.Fatalf("message %d: index %d, %d entries", i, m.Index, len(m.Entries))
		}
	}
}
