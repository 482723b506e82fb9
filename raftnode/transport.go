package raftnode

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"
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
	Send(msgs []raftpb.Message)
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
	Step(ctx context.Context, m raftpb.Message) error
	// ReportUnreachable tells raft a peer could not be reached. Never blocks.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells raft how sending a MsgSnap ended. Never blocks.
	ReportSnapshot(id uint64, failed bool)
	// OpenSnapshot opens the snapshot file a MsgSnap refers to (sender side).
	OpenSnapshot(m raftpb.Message) (io.ReadCloser, int64, error)
	// ReceiveSnapshot stores the streamed snapshot file of a MsgSnap,
	// verifies it, then steps the message (receiver side).
	ReceiveSnapshot(ctx context.Context, m raftpb.Message, r io.Reader) error
}

type report struct {
	id       uint64
	snapshot bool
	failed   bool
}

// handler is the Node's TransportHandler.
type handler struct{ n *Node }

var _ TransportHandler = handler{}

func (h handler) Step(ctx context.Context, m raftpb.Message) error {
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

func (h handler) OpenSnapshot(m raftpb.Message) (io.ReadCloser, int64, error) {
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
	return f, st.Size(), nil
}

func (h handler) ReceiveSnapshot(ctx context.Context, m raftpb.Message, r io.Reader) error {
	term, index := snapshotRef(m)
	if err := receiveSnapshotFile(h.n.snapDir, term, index, r); err != nil {
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
