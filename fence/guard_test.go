package fence_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/arbor-db/arbor/fence"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAdvance(t *testing.T) {
	tests := []struct {
		name    string
		tokens  []uint64 // accepted in order, before the last
		last    uint64
		wantErr error
		highest uint64
	}{
		{name: "first token", last: 5, highest: 5},
		{name: "higher", tokens: []uint64{5}, last: 9, highest: 9},
		{name: "same holder again", tokens: []uint64{5}, last: 5, highest: 5},
		{name: "lower", tokens: []uint64{5, 9}, last: 7, wantErr: fence.ErrStale, highest: 9},
		{name: "zero", last: 0, wantErr: fence.ErrNoToken, highest: 0},
		{name: "zero after a token", tokens: []uint64{3}, last: 0, wantErr: fence.ErrNoToken, highest: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g fence.Guard
			for _, tok := range tt.tokens {
				if err := g.Advance(tok); err != nil {
					t.Fatalf("Advance(%d): %v", tok, err)
				}
			}
			err := g.Advance(tt.last)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Advance(%d) = %v, want %v", tt.last, err, tt.wantErr)
			}
			if got := g.Highest(); got != tt.highest {
				t.Fatalf("Highest() = %d, want %d", got, tt.highest)
			}
		})
	}
}

func TestStaleErrorNamesBothTokens(t *testing.T) {
	var gs fence.Guards
	g := gs.Guard("accounts/42")
	if err := g.Advance(9); err != nil {
		t.Fatal(err)
	}
	err := g.Advance(7)
	var se *fence.StaleError
	if !errors.As(err, &se) {
		t.Fatalf("Advance(7) = %v, want a *StaleError", err)
	}
	if se.Token != 7 || se.Highest != 9 || se.Resource != "accounts/42" {
		t.Fatalf("StaleError %+v", *se)
	}
	for _, want := range []string{"7", "9", `"accounts/42"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name %s", err, want)
		}
	}
}

func TestDo(t *testing.T) {
	var g fence.Guard
	ran := 0
	write := func() error { ran++; return nil }
	if err := g.Do(4, write); err != nil {
		t.Fatal(err)
	}
	if err := g.Do(3, write); !errors.Is(err, fence.ErrStale) {
		t.Fatalf("Do(3) after 4 = %v, want ErrStale", err)
	}
	if ran != 1 {
		t.Fatalf("fn ran %d times, want once: a refused token must not run it", ran)
	}

	// A failing write still proves that lower tokens are stale.
	boom := errors.New("boom")
	if err := g.Do(6, func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Do = %v, want fn's error", err)
	}
	if err := g.Advance(5); !errors.Is(err, fence.ErrStale) {
		t.Fatalf("Advance(5) after a failed Do(6) = %v, want ErrStale", err)
	}
	if err := g.Do(7, nil); err == nil {
		t.Fatal("Do with a nil fn succeeded")
	}
}

func TestGuardsAreIndependentAndStable(t *testing.T) {
	var gs fence.Guards
	if err := gs.Guard("a").Advance(10); err != nil {
		t.Fatal(err)
	}
	if err := gs.Guard("b").Advance(2); err != nil {
		t.Fatalf("a token of a does not fence b: %v", err)
	}
	if first, again := gs.Guard("a"), gs.Guard("a"); first != again {
		t.Fatal("two guards for one name")
	}
	if err := gs.Guard("a").Advance(9); !errors.Is(err, fence.ErrStale) {
		t.Fatalf("Advance(9) on a = %v, want ErrStale", err)
	}
}

// Concurrent holders of successive tokens: whatever the interleaving, the
// resource's writes carry tokens that never go down, every refusal is of a
// token below one already written, and the highest token gets in.
func TestDoConcurrent(t *testing.T) {
	var gs fence.Guards
	g := gs.Guard("r")
	var (
		mu      sync.Mutex // guards written; Do serialises anyway, the race detector checks that
		written []uint64
		wg      sync.WaitGroup
	)
	const holders = 64
	errs := make([]error, holders+1)
	for tok := uint64(1); tok <= holders; tok++ {
		wg.Go(func() {
			errs[tok] = g.Do(tok, func() error {
				mu.Lock()
				defer mu.Unlock()
				written = append(written, tok)
				return nil
			})
		})
	}
	wg.Wait()
	for i := 1; i < len(written); i++ {
		if written[i] < written[i-1] {
			t.Fatalf("write %d carries token %d after %d", i, written[i], written[i-1])
		}
	}
	if written[len(written)-1] != holders {
		t.Fatalf("the last write carries %d, want the highest token %d", written[len(written)-1], holders)
	}
	for tok, err := range errs[1:] {
		if err != nil && !errors.Is(err, fence.ErrStale) {
			t.Errorf("Do(%d) = %v", tok+1, err)
		}
	}
	if got := len(written) + countErrs(errs); got != holders {
		t.Fatalf("%d writes and refusals, want %d", got, holders)
	}
}

func countErrs(errs []error) int {
	n := 0
	for _, err := range errs {
		if err != nil {
			n++
		}
	}
	return n
}
