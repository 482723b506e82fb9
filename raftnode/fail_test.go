package raftnode

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

type countSM struct{ applied atomic.Uint64 }

func (s *countSM) Apply(ents []Entry) {
	if len(ents) > 0 {
		s.applied.Store(ents[len(ents)-1].Index)
	}
}
func (s *countSM) Snapshot(io.Writer) error        { return nil }
func (s *countSM) Restore(uint64, io.Reader) error { return nil }

func TestStorageWriteErrorStopsRun(t *testing.T) {
	sm := &countSM{}
	n, err := New(Config{Name: "solo", DataDir: t.TempDir(), TickInterval: 10 * time.Millisecond}, sm)
	if err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	injected := errors.New("injected fsync failure")
	n.disk.beforeCommit = func() error {
		if fail.Load() {
			return injected
		}
		return nil
	}
	runErr := make(chan error, 1)
	go func() { runErr <- n.Run(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !n.Status().IsLeader {
		if ctx.Err() != nil {
			t.Fatal("no leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := n.Propose(ctx, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	before := sm.applied.Load()
	_ = n.Propose(ctx, []byte("doomed"))
	select {
	case err := <-runErr:
		if !errors.Is(err, ErrStorage) || !errors.Is(err, injected) {
			t.Fatalf("Run returned %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Run kept going after a failed write")
	}
	if got := sm.applied.Load(); got > before+1 {
		t.Fatalf("applied %d entries past a failed write", got-before)
	}
	if err := n.Propose(context.Background(), []byte("after")); !errors.Is(err, ErrStopped) {
		t.Fatalf("Propose after stop: %v", err)
	}
	if err := n.LinearizableRead(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("read after stop: %v", err)
	}
}
