package raftnode

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

type countSM struct {
	applied atomic.Uint64
	cmds    atomic.Uint64 // entries with data applied
	failAt  atomic.Uint64 // Apply fails once it meets this index (0: never)
}

var errApplyInjected = errors.New("injected apply failure")

func (s *countSM) Apply(ents []Entry) error {
	for _, e := range ents {
		if at := s.failAt.Load(); at != 0 && e.Index >= at {
			return errApplyInjected
		}
		s.applied.Store(e.Index)
		if e.Data != nil {
			s.cmds.Add(1)
		}
	}
	return nil
}
func (s *countSM) Snapshot(io.Writer) error        { return nil }
func (s *countSM) Restore(uint64, io.Reader) error { return nil }

func TestStorageWriteErrorStopsRun(t *testing.T) {
	sm := &countSM{}
	n, fail, injected := soloWithFailingCommit(t, sm)
	runErr := make(chan error, 1)
	go func() { runErr <- n.Run(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	awaitLeader(ctx, t, n)
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

// An Apply error (a command this member cannot decode) ends Run with it
// instead of letting the member carry on with a state that differs.
func TestApplyErrorStopsRun(t *testing.T) {
	sm := &countSM{}
	n, err := New(Config{Name: "solo", DataDir: t.TempDir(), TickInterval: 10 * time.Millisecond}, sm)
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- n.Run(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	awaitLeader(ctx, t, n)
	sm.failAt.Store(sm.applied.Load() + 1)
	if err := n.Propose(ctx, []byte("x")); err != nil && !errors.Is(err, ErrStopped) {
		t.Logf("propose: %v", err)
	}
	select {
	case err := <-runErr:
		if !errors.Is(err, errApplyInjected) {
			t.Fatalf("Run = %v, want the apply error", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not stop after an apply error")
	}
}

// A clean stop writes the HardState held back since the last durable write
// (a commit-only change); if that write fails, Run returns the error rather
// than nil.
func TestCloseErrorIsRunsError(t *testing.T) {
	sm := &countSM{}
	n, fail, injected := soloWithFailingCommit(t, sm)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- n.Run(runCtx) }()
	awaitLeader(ctx, t, n)
	if err := n.Propose(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	// The entry is applied once its commit index is known, which a single
	// member learns after the entry's own write: that commit index is
	// held back for the next write, here the one Close makes.
	for sm.cmds.Load() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("proposal not applied within 10s")
		case <-time.After(5 * time.Millisecond):
		}
	}
	fail.Store(true)
	stop()
	select {
	case err := <-runErr:
		if !errors.Is(err, ErrStorage) || !errors.Is(err, injected) {
			t.Fatalf("Run = %v, want the failed close's error", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return")
	}
}

// soloWithFailingCommit opens a single-member node whose durable writes fail
// (as a failed fsync would) once the returned flag is set.
func soloWithFailingCommit(t *testing.T, sm StateMachine) (*Node, *atomic.Bool, error) {
	t.Helper()
	n, err := New(Config{Name: "solo", DataDir: t.TempDir(), TickInterval: 10 * time.Millisecond}, sm)
	if err != nil {
		t.Fatal(err)
	}
	fail := &atomic.Bool{}
	injected := errors.New("injected fsync failure")
	n.disk.beforeCommit = func() error {
		if fail.Load() {
			return injected
		}
		return nil
	}
	return n, fail, injected
}

// awaitLeader waits until n leads, or ctx ends.
func awaitLeader(ctx context.Context, t *testing.T, n *Node) {
	t.Helper()
	for !n.Status().IsLeader {
		if ctx.Err() != nil {
			t.Fatal("no leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
