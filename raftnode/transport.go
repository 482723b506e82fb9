package raftnode

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Transport moves raft messages between members. The TCP transport is the
// default; rafttest replaces it with a fault-injecting in-memory network.
type Transport interface {
	// Run serves until ctx ends, delivering inbound messages to h.
	Run(ctx context.Context, h TransportHandler) error
	// Send queues messages; it must not block (it runs on the raft
	// goroutine). Messages may be dropped (raft retries), except MsgSnap,
	// whose failure must be reported through h.ReportSnapshot. The slice and
	// messages are not retained by the caller: a transport that holds them
	// past the call must not modify them.
	Send(msgs []Message)
	AddPeer(id uint64, peerURL string)
	RemovePeer(id uint64)
	// Alive reports whether a frame from id arrived recently.
	Alive(id uint64) bool
}

// TransportHandler is the node side of a Transport. Its methods are safe to
// call from any goroutine.
type TransportHandler interface {
	// Step hands an inbound message to the raft goroutine; it blocks until
	// accepted or ctx ends.
	Step(ctx context.Context, m Message) error
	// ReportUnreachable tells raft a peer could not be reached. Never blocks.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells raft how sending a MsgSnap ended. Never blocks.
	ReportSnapshot(id uint64, failed bool)
	// OpenSnapshot opens the snapshot file a MsgSnap refers to (sender side).
	OpenSnapshot(m Message) (io.ReadCloser, int64, error)
	// ReceiveSnapshot stores the streamed snapshot file of a MsgSnap,
	// verifies it, then steps the message (receiver side).
	ReceiveSnapshot(ctx context.Context, m Message, r io.Reader) error
}

type report struct {
	id       uint64
	snapshot bool
	failed   bool
}

// handler is the Node's TransportHandler.
type handler struct{ n *Node }

var _ TransportHandler = handler{}

func (h handler) Step(ctx context.Context, m Message) error {
	select {
	case h.n.recvc <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-h.n.done:
		return ErrStopped
	}
}

func (h handler) ReportUnreachable(id uint64) { h.n.addReport(report{id: id}) }

func (h handler) ReportSnapshot(id uint64, failed bool) {
	h.n.addReport(report{id: id, snapshot: true, failed: failed})
}

func (h handler) OpenSnapshot(m Message) (io.ReadCloser, int64, error) {
	term, index := snapshotRef(m)
	f, err := os.Open(filepath.Join(h.n.snapDir, snapFileName(term, index)))
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if h.n.snapSendFilter != nil {
		return struct {
			io.Reader
			io.Closer
		}{h.n.snapSendFilter(f), f}, st.Size(), nil
	}
	return f, st.Size(), nil
}

// ReceiveSnapshot runs on a transport goroutine. A storage error here ends
// Run like one on the raft goroutine: the member stops instead of letting
// the leader's resend write (and fsync) the snapshot again.
func (h handler) ReceiveSnapshot(ctx context.Context, m Message, r io.Reader) error {
	if h.n.storageFail.get() != nil {
		return ErrStopped // stopping on a storage error: write nothing more
	}
	term, index := snapshotRef(m)
	if err := receiveSnapshotFile(h.n.snapDir, term, index, r, h.n.beforeRecvSync); err != nil {
		if errors.Is(err, ErrStorage) {
			h.n.storageFail.set(err)
		}
		return err
	}
	return h.Step(ctx, withSnapshotData(m, []byte(snapFileName(term, index))))
}

func (n *Node) addReport(r report) {
	n.reportMu.Lock()
	n.reports = append(n.reports, r)
	n.reportMu.Unlock()
	select {
	case n.reportc <- struct{}{}:
	default:
	}
}

// failure is the first storage error met off the raft goroutine; the loop
// ends Run with it.
type failure struct {
	once sync.Once
	err  error
	c    chan struct{} // closed once err is set
}

func newFailure() *failure { return &failure{c: make(chan struct{})} }

func (f *failure) set(err error) {
	f.once.Do(func() {
		f.err = err
		close(f.c)
	})
}

// done is closed once an error is set.
func (f *failure) done() <-chan struct{} { return f.c }

// get returns the error, or nil while there is none.
func (f *failure) get() error {
	select {
	case <-f.c:
		return f.err
	default:
		return nil
	}
}
