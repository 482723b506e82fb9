package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

func TestLockWorkload(t *testing.T) {
	for _, clients := range []int{1, 2, 16} {
		t.Run(fmt.Sprint(clients), func(t *testing.T) {
			sys := newMemSystem()
			env := sys.env(opsOpts(clients, 300))
			env.Prefix = "/b"
			res, err := Run(t.Context(), "lock", env)
			if err != nil {
				t.Fatal(err)
			}
			if res.Workload != "lock" || res.Ops != 300 || res.Errors != 0 || res.Clients != clients {
				t.Fatalf("%s: %d grants, %d errors (%s), %d clients; want 300 grants, no errors", res.Workload, res.Ops, res.Errors, res.FirstError, res.Clients)
			}
			if res.OpsPerSec <= 0 || res.P99Ms < res.P50Ms || res.MaxMs < res.P99Ms {
				t.Fatalf("implausible figures: %+v", res)
			}
			if sys.tokens != 300 {
				t.Fatalf("%d locks granted, want 300", sys.tokens)
			}
			if h := sys.held("/b/lock"); h != 0 || sys.open.Load() != 0 {
				t.Fatalf("after the run session %d holds the lock and %d sessions are open", h, sys.open.Load())
			}
		})
	}
}

func TestLockWorkloadCreatesThePathsParents(t *testing.T) {
	sys := newMemSystem()
	o := opsOpts(2, 20)
	o.Path = "/x/y/z"
	res, err := Run(t.Context(), "lock", sys.env(o))
	if err != nil || res.Ops != 20 || res.Errors != 0 {
		t.Fatalf("%d grants, %d errors (%s), err %v", res.Ops, res.Errors, res.FirstError, err)
	}
	if _, ok := sys.locks["/x/y/z"]; !ok {
		t.Fatalf("no lock at --path: locks %v", sys.locks)
	}
}

func TestLockWorkloadCatchesStaleTokens(t *testing.T) {
	sys := newMemSystem()
	sys.staleTokens = true
	res, err := Run(t.Context(), "lock", sys.env(opsOpts(2, 50)))
	if err != nil {
		t.Fatal(err)
	}
	// The first grant's token 1 is fine; each later one repeats it.
	if res.Errors != 49 || !strings.Contains(res.FirstError, "after token 1") {
		t.Fatalf("errors %d (first: %q); want 49 token failures", res.Errors, res.FirstError)
	}
}

func TestLockFailuresReplaceTheSession(t *testing.T) {
	sys := newMemSystem()
	sys.failEvery = 7
	env := sys.env(opsOpts(3, 200))
	var dials atomic.Int64
	orig := env.DialAt
	env.DialAt = func(ctx context.Context, eps []string) (Store, error) {
		dials.Add(1)
		return orig(ctx, eps)
	}
	res, err := Run(t.Context(), "lock", env)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.Ops+res.Errors != 200 || !strings.Contains(res.FirstError, "injected failure") {
		t.Fatalf("grants %d, errors %d (%s): want some of the 200 failed and counted", res.Ops, res.Errors, res.FirstError)
	}
	if n := dials.Load(); n != 3+res.Errors {
		t.Fatalf("%d dials for 3 clients and %d errors: want a new session after each failure", n, res.Errors)
	}
	if sys.open.Load() != 0 || sys.held(env.Prefix+"/lock") != 0 {
		t.Fatalf("%d sessions open, lock held by %d", sys.open.Load(), sys.held(env.Prefix+"/lock"))
	}
}

// noLocker is a Store without Lock.
type noLocker struct{ Store }

func TestLockNeedsALocker(t *testing.T) {
	env := newMemSystem().env(opsOpts(1, 1))
	orig := env.DialAt
	env.DialAt = func(ctx context.Context, eps []string) (Store, error) {
		s, err := orig(ctx, eps)
		return noLocker{s}, err
	}
	if _, err := Run(t.Context(), "lock", env); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
}

func TestLockCheck(t *testing.T) {
	type step struct {
		enter   bool // enter, else leave
		id      int
		token   uint64
		wantErr string
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"turns", []step{{true, 0, 5, ""}, {false, 0, 0, ""}, {true, 1, 6, ""}, {false, 1, 0, ""}, {true, 0, 9, ""}}},
		{"first token 0", []step{{true, 0, 0, ""}, {false, 0, 0, ""}, {true, 1, 1, ""}, {false, 1, 0, ""}, {true, 0, 1, "token 1 after token 1"}}},
		{"two holders", []step{{true, 0, 5, ""}, {true, 1, 6, "client 1 was granted the lock while client 0 held it"}}},
		{"token repeated", []step{{true, 0, 5, ""}, {false, 0, 0, ""}, {true, 1, 5, "token 5 after token 5"}}},
		{"token back", []step{{true, 0, 5, ""}, {false, 0, 0, ""}, {true, 1, 4, "token 4 after token 5"}}},
		{"a leave frees only its own grant", []step{{true, 0, 5, ""}, {false, 1, 0, ""}, {true, 2, 6, "while client 0 held it"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var k lockCheck
			for i, s := range tt.steps {
				if !s.enter {
					k.leave(s.id)
					continue
				}
				err := k.enter(s.id, s.token)
				if s.wantErr == "" && err != nil || s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr) || !errors.Is(err, ErrMismatch)) {
					t.Fatalf("step %d: enter(%d, %d) = %v, want %q", i, s.id, s.token, err, s.wantErr)
				}
			}
		})
	}
}

func TestAncestors(t *testing.T) {
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/a", []string{"/a"}},
		{"/a/b/c", []string{"/a", "/a/b", "/a/b/c"}},
		{"/", nil},
	} {
		if got := ancestors(tt.path); !slices.Equal(got, tt.want) {
			t.Errorf("ancestors(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}
