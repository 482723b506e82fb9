package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// memCandidate leads a memSystem election from another session, as the
// spawned process would.
type memCandidate struct {
	s       Store
	timeout time.Duration
	once    sync.Once
}

func (c *memCandidate) Kill() error {
	c.once.Do(func() { _ = c.s.Close(context.Background()) })
	return nil
}
func (c *memCandidate) SessionTimeout() time.Duration { return c.timeout }

func spawnMem(sys *memSystem, timeout time.Duration, spawned *int) func(ctx context.Context, path string) (Candidate, error) {
	return func(ctx context.Context, path string) (Candidate, error) {
		*spawned++
		s, err := sys.env(Options{}).Dial(ctx)
		if err != nil {
			return nil, err
		}
		ms := s.(*memStore)
		env := &Env{System: "mem", DialAt: func(context.Context, []string) (Store, error) { return keepOpen{ms}, nil }}
		pr, pw := io.Pipe()
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- RunCandidate(cctx, env, path, pw) }()
		got, err := readLeading(pr)
		cancel() // it leads: let RunCandidate return, its session open
		if err := errors.Join(err, <-done); err != nil {
			return nil, err
		}
		if got != sys.sessionTimeout {
			return nil, fmt.Errorf("candidate said its session timeout is %v", got)
		}
		return &memCandidate{s: s, timeout: timeout}, nil
	}
}

// keepOpen is a Store whose Close does nothing: RunCandidate's session
// outlives it, as a killed process's does.
type keepOpen struct{ *memStore }

func (keepOpen) Close(context.Context) error { return nil }

func TestElectFailover(t *testing.T) {
	sys := newMemSystem()
	env := sys.env(Options{Ops: 3})
	env.Prefix = "/b"
	var spawned int
	env.Spawn = spawnMem(sys, 0, &spawned)
	res, err := Run(t.Context(), "elect-failover", env)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 3 || res.Errors != 0 || spawned != 3 {
		t.Fatalf("%d rounds, %d errors (%s), %d candidates spawned; want 3 rounds, 3 candidates", res.Ops, res.Errors, res.FirstError, spawned)
	}
	// Each round the candidate led and this session after it: 6 elections.
	if sys.tokens != 6 || sys.held("elect:/b/elect") != 0 || sys.open.Load() != 0 {
		t.Fatalf("%d elections, leader %d, %d sessions open; want 6, none, none", sys.tokens, sys.held("elect:/b/elect"), sys.open.Load())
	}
}

func TestElectFailoverCatchesAnElectionBeforeTheSessionCouldExpire(t *testing.T) {
	sys := newMemSystem()
	env := sys.env(Options{Ops: 1})
	var spawned int
	// The fake ends the candidacy at once; a real session lasts this long.
	env.Spawn = spawnMem(sys, time.Hour, &spawned)
	res, err := Run(t.Context(), "elect-failover", env)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 1 || !strings.Contains(res.FirstError, "sooner than its session") || res.SessionTimeoutMs != 3.6e6 {
		t.Fatalf("errors %d (%s), session timeout %v ms; want the early election reported", res.Errors, res.FirstError, res.SessionTimeoutMs)
	}
}

func TestElectFailoverNeedsSpawn(t *testing.T) {
	if _, err := Run(t.Context(), "elect-failover", newMemSystem().env(Options{})); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
}

// The test binary is its own candidate process when BENCH_HELPER says so.
func helperCandidate() {
	switch os.Getenv("BENCH_HELPER") {
	case "lead":
		fmt.Println("connecting")
		fmt.Println("leading 1234")
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		<-ctx.Done() // until killed
		os.Exit(0)
	case "fail":
		fmt.Fprintln(os.Stderr, "no quorum")
		os.Exit(1)
	}
}

func TestSpawnCommand(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := func(mode string) func(string) []string {
		return func(path string) []string {
			t.Setenv("BENCH_HELPER", mode) // inherited by the child
			return []string{exe, "-test.run=^$", path}
		}
	}
	var stderr strings.Builder
	c, err := SpawnCommand(&stderr, argv("lead"))(t.Context(), "/e")
	if err != nil {
		t.Fatal(err)
	}
	if c.SessionTimeout() != 1234*time.Millisecond {
		t.Errorf("session timeout %v, want 1.234s", c.SessionTimeout())
	}
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(); err != nil {
		t.Fatalf("second kill: %v", err)
	}
	if _, err := SpawnCommand(&stderr, argv("fail"))(t.Context(), "/e"); !errors.Is(err, ErrCandidate) || !strings.Contains(stderr.String(), "no quorum") {
		t.Fatalf("err %v, stderr %q; want ErrCandidate and the child's stderr", err, stderr.String())
	}
}
