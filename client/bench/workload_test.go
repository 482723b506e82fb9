package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	helperCandidate()
	goleak.VerifyTestMain(m)
}

func opsOpts(clients int, ops int64) Options {
	return Options{Clients: clients, Ops: ops, Keys: 20, ValueSize: 32, Sessions: 50}
}

func TestWorkloadsAgainstAHealthySystem(t *testing.T) {
	for _, name := range []string{"create", "set", "get", "get-local", "get-linearizable", "multi"} {
		for _, clients := range []int{1, 4} {
			t.Run(name+"/"+string(rune('0'+clients)), func(t *testing.T) {
				sys := newMemSystem()
				res, err := Run(t.Context(), name, sys.env(opsOpts(clients, 200)))
				if err != nil {
					t.Fatal(err)
				}
				if res.Errors != 0 || res.Ops != 200 || res.Clients != clients {
					t.Fatalf("got %d ops, %d errors (%s) with %d clients; want 200 ops, 0 errors", res.Ops, res.Errors, res.FirstError, res.Clients)
				}
				if res.P50Ms <= 0 || res.P99Ms < res.P50Ms || res.MaxMs < res.P99Ms || res.OpsPerSec <= 0 {
					t.Fatalf("implausible figures: %+v", res)
				}
				if sys.open.Load() != 0 {
					t.Fatalf("%d sessions left open", sys.open.Load())
				}
			})
		}
	}
}

func TestGetWorkloadNamesItsConsistency(t *testing.T) {
	for _, tt := range []struct {
		name  string
		local bool
		want  string
	}{
		{"get", false, "get-linearizable"},
		{"get", true, "get-local"},
		{"get-local", false, "get-local"},
		{"get-linearizable", true, "get-linearizable"},
	} {
		o := opsOpts(1, 5)
		o.Local = tt.local
		res, err := Run(t.Context(), tt.name, newMemSystem().env(o))
		if err != nil || res.Workload != tt.want {
			t.Errorf("%s --local=%v: workload %q, err %v; want %q", tt.name, tt.local, res.Workload, err, tt.want)
		}
	}
}

func TestChecksCatchAWrongSystem(t *testing.T) {
	tests := []struct {
		workload string
		break_   func(*memSystem)
		minErrs  int64
	}{
		// Every get answers wrong: every op is an error, none is timed.
		{"get", func(m *memSystem) { m.staleGets = true }, 100},
		{"get-local", func(m *memSystem) { m.staleGets = true }, 100},
		// Sets acknowledged but lost: the read-back after the run sees it.
		{"set", func(m *memSystem) { m.dropSets = true }, 1},
		{"multi", func(m *memSystem) { m.dropSets = true }, 1},
		// The last create reads back wrong.
		{"create", func(m *memSystem) { m.staleGets = true }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.workload, func(t *testing.T) {
			sys := newMemSystem()
			env := sys.env(opsOpts(2, 100))
			// Break the system after setup: wrap DialAt so the first op
			// flips the fault on.
			var once sync.Once
			orig := env.DialAt
			env.DialAt = func(ctx context.Context, eps []string) (Store, error) {
				s, err := orig(ctx, eps)
				return &breakOnFirstOp{Store: s, arm: func() { once.Do(func() { sys.mu.Lock(); tt.break_(sys); sys.mu.Unlock() }) }}, err
			}
			res, err := Run(t.Context(), tt.workload, env)
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors < tt.minErrs || !strings.Contains(res.FirstError, "verification failed") {
				t.Fatalf("errors = %d (first: %q), want at least %d verification failures", res.Errors, res.FirstError, tt.minErrs)
			}
		})
	}
}

// breakOnFirstOp arms a fault once the timed loop (not setup) starts: the
// loop is the first to call Get or Multi, or Set after a Sync.
type breakOnFirstOp struct {
	Store
	arm func()
}

func (b *breakOnFirstOp) Get(ctx context.Context, p string, local bool) ([]byte, error) {
	b.arm()
	return b.Store.Get(ctx, p, local)
}

func (b *breakOnFirstOp) Set(ctx context.Context, p string, d []byte) error {
	if strings.Contains(string(d), ":s") { // a set of the loop, not of setup
		b.arm()
	}
	return b.Store.Set(ctx, p, d)
}

func (b *breakOnFirstOp) Multi(ctx context.Context, ops []Op) error {
	b.arm()
	return b.Store.Multi(ctx, ops)
}

func TestFailedOpsAreCountedNotTimed(t *testing.T) {
	sys := newMemSystem()
	sys.failEvery = 10
	res, err := Run(t.Context(), "create", sys.env(opsOpts(3, 300)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.Ops+res.Errors < 300 || res.Ops >= 300 {
		t.Fatalf("ops %d, errors %d: want some of the 300 failed and counted", res.Ops, res.Errors)
	}
	if !strings.Contains(res.FirstError, "injected failure") {
		t.Fatalf("first error %q does not say what failed", res.FirstError)
	}
}

func TestDurationBoundsTheRun(t *testing.T) {
	o := opsOpts(2, 0)
	o.Duration = 50 * time.Millisecond
	res, err := Run(t.Context(), "set", newMemSystem().env(o))
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || res.Errors != 0 {
		t.Fatalf("ops %d, errors %d (%s)", res.Ops, res.Errors, res.FirstError)
	}
	if res.ElapsedSec < 0.05 {
		t.Fatalf("ran %.3fs, want at least the 50ms asked for", res.ElapsedSec)
	}
}

func TestCanceledRunStops(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	o := opsOpts(2, 0)
	o.Duration = time.Hour
	env := newMemSystem().env(o)
	orig := env.DialAt
	var n int
	env.DialAt = func(ctx context.Context, eps []string) (Store, error) {
		n++
		if n == 2 {
			defer cancel() // the second session opened: setup is under way
		}
		return orig(ctx, eps)
	}
	if _, err := Run(ctx, "get", env); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestSessions(t *testing.T) {
	sys := newMemSystem()
	o := opsOpts(4, 0)
	o.Sessions = 120
	res, err := Run(t.Context(), "sessions", sys.env(o))
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 120 || res.Errors != 0 {
		t.Fatalf("ops %d errors %d (%s); want 120 sessions, no errors", res.Ops, res.Errors, res.FirstError)
	}
	// The fake's memory grows by 10 bytes a session (plus the admin one).
	if res.MemBeforeBytes != 1010 || res.MemAfterBytes != 1010+1200 {
		t.Fatalf("memory %d -> %d, want 1010 -> 2210", res.MemBeforeBytes, res.MemAfterBytes)
	}
	if sys.open.Load() != 0 {
		t.Fatalf("%d sessions left open", sys.open.Load())
	}
}

// leakyClose leaves its ephemerals behind, as a broken server would.
type leakyClose struct{ Store }

func (leakyClose) Close(context.Context) error { return nil }

func TestSessionsCatchEphemeralsThatOutliveTheirSession(t *testing.T) {
	defer func(g time.Duration) { ephemeralGrace = g }(ephemeralGrace)
	ephemeralGrace = 100 * time.Millisecond
	sys := newMemSystem()
	o := opsOpts(2, 0)
	o.Sessions = 3
	env := sys.env(o)
	orig := env.DialAt
	var n atomic.Int64 // sessions open concurrently
	env.DialAt = func(ctx context.Context, eps []string) (Store, error) {
		s, err := orig(ctx, eps)
		if n.Add(1) == 1 {
			return s, err // the admin session
		}
		return leakyClose{s}, err
	}
	res, err := Run(t.Context(), "sessions", env)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 3 || !strings.Contains(res.FirstError, "outlived") {
		t.Fatalf("errors %d (%s); want 3 leftover ephemerals reported", res.Errors, res.FirstError)
	}
}

func TestUnknownWorkload(t *testing.T) {
	if _, err := Run(t.Context(), "nope", newMemSystem().env(Options{})); !errors.Is(err, ErrUnknownWorkload) {
		t.Fatalf("err = %v", err)
	}
}

func TestOutput(t *testing.T) {
	r := Result{System: "arbor", Workload: "set", Clients: 16, Ops: 1000, OpsPerSec: 512.5, P50Ms: 1.25, P99Ms: 9.5, MaxMs: 20, Errors: 2}
	var js bytes.Buffer
	if err := WriteJSON(&js, r, r); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one JSON object a line, got %q", js.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"system", "workload", "clients", "ops", "ops_per_sec", "p50_ms", "p99_ms", "max_ms", "errors"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, lines[0])
		}
	}
	var tb bytes.Buffer
	if err := WriteTable(&tb, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OPS/S", "arbor", "512", "1.250", "9.500"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tb.String())
		}
	}
}
