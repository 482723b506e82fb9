package session

import (
	"slices"
	"testing"
	"time"
)

// fakeClock is a settable clock for the tracker.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestTracker() (*Tracker, *fakeClock) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	return NewTracker(c.now, 100*time.Millisecond), c
}

func TestTrackerExpiresAfterTimeoutNotBefore(t *testing.T) {
	tr, clk := newTestTracker()
	tr.Add(1, 2*time.Second)
	tr.Add(2, 5*time.Second)
	steps := []struct {
		advance time.Duration
		want    []uint64
	}{
		{1999 * time.Millisecond, nil},
		{time.Millisecond, []uint64{1}},
		{time.Second, nil}, // 1 was handed out already
		{2 * time.Second, []uint64{2}},
	}
	for i, s := range steps {
		clk.advance(s.advance)
		if got := tr.Expired(); !slices.Equal(got, s.want) {
			t.Fatalf("step %d: Expired = %v, want %v", i, got, s.want)
		}
	}
}

func TestTrackerTouchRenews(t *testing.T) {
	tr, clk := newTestTracker()
	tr.Add(7, 2*time.Second)
	for range 10 {
		clk.advance(1500 * time.Millisecond)
		if !tr.Touch(7) {
			t.Fatal("Touch of a live session = false")
		}
		if got := tr.Expired(); len(got) != 0 {
			t.Fatalf("renewed session expired: %v", got)
		}
	}
	clk.advance(2 * time.Second)
	if got := tr.Expired(); !slices.Equal(got, []uint64{7}) {
		t.Fatalf("Expired = %v, want [7]", got)
	}
	// Decided: a late renewal must not be confirmed.
	if tr.Touch(7) {
		t.Error("Touch of an expiring session = true")
	}
	if _, ok := tr.Remaining(7); ok {
		t.Error("Remaining of an expiring session reports it live")
	}
	if tr.Touch(99) {
		t.Error("Touch of an unknown session = true")
	}
}

func TestTrackerGiveBackAndRemove(t *testing.T) {
	tr, clk := newTestTracker()
	tr.Add(1, 2*time.Second)
	tr.Add(2, 2*time.Second)
	clk.advance(3 * time.Second)
	got := tr.Expired()
	if !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("Expired = %v", got)
	}
	// The proposal for 2 failed; 1 was applied.
	tr.Remove(1)
	tr.GiveBack([]uint64{2})
	// A proposal that failed may still commit: no renewal brings 2 back.
	if tr.Touch(2) {
		t.Error("Touch of a session given back after a failed expiry = true")
	}
	if _, ok := tr.Remaining(2); ok {
		t.Error("Remaining of a session given back after a failed expiry reports it live")
	}
	if got := tr.Expired(); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("after GiveBack: Expired = %v, want [2]", got)
	}
	// Its proposal failed again: due again, as often as it takes.
	tr.GiveBack([]uint64{2})
	if got := tr.Expired(); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("after a second GiveBack: Expired = %v, want [2]", got)
	}
	if tr.Len() != 1 {
		t.Errorf("Len = %d, want 1", tr.Len())
	}
	// Given back again, then applied after all (a timed-out proposal that
	// committed): it waits nowhere any more.
	tr.GiveBack([]uint64{2})
	tr.Remove(2)
	if got := tr.Expired(); len(got) != 0 {
		t.Fatalf("after the expiry of a given-back session was applied: Expired = %v", got)
	}
	tr.Remove(2) // idempotent
	if tr.Len() != 0 || len(tr.buckets) != 0 {
		t.Errorf("Len %d, buckets %d after removing all", tr.Len(), len(tr.buckets))
	}
}

// A new leader resets every deadline to a full timeout, including sessions
// the old leader was about to expire.
func TestTrackerResetGivesFullTimeout(t *testing.T) {
	tr, clk := newTestTracker()
	tr.Add(1, 2*time.Second)
	tr.Add(2, 10*time.Second)
	clk.advance(2500 * time.Millisecond)
	if got := tr.Expired(); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("Expired = %v", got)
	}
	clk.advance(7 * time.Second) // 2 is 0.5 s from its deadline
	tr.Reset()
	if !tr.Touch(1) {
		t.Error("after Reset, an expiring session is still refused")
	}
	tr.Reset()
	clk.advance(1900 * time.Millisecond)
	if got := tr.Expired(); len(got) != 0 {
		t.Fatalf("expired %v within a full timeout of Reset", got)
	}
	clk.advance(200 * time.Millisecond)
	if got := tr.Expired(); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("Expired = %v, want [1]", got)
	}
	if rem, ok := tr.Remaining(2); !ok || rem < 7*time.Second || rem > 8*time.Second {
		t.Errorf("Remaining(2) = %v, %v; want about 7.9s", rem, ok)
	}
}

func TestTrackerReplace(t *testing.T) {
	tr, clk := newTestTracker()
	tr.Add(1, time.Second)
	tr.Replace(map[uint64]time.Duration{5: 2 * time.Second, 6: 3 * time.Second})
	if tr.Touch(1) {
		t.Error("a session dropped by Replace is still tracked")
	}
	clk.advance(2100 * time.Millisecond)
	if got := tr.Expired(); !slices.Equal(got, []uint64{5}) {
		t.Fatalf("Expired = %v, want [5]", got)
	}
}

// Deadlines are rounded up to the granularity, never down, and a session
// expires within one granularity after its deadline.
func TestTrackerNeverEarly(t *testing.T) {
	tr, clk := newTestTracker()
	deadlines := map[uint64]time.Time{}
	for step := range 800 {
		clk.advance(7 * time.Millisecond)
		if step < 50 {
			id, timeout := uint64(step+1), 2*time.Second+time.Duration(step*13)*time.Millisecond
			tr.Add(id, timeout)
			deadlines[id] = clk.t.Add(timeout)
		}
		for _, id := range tr.Expired() {
			if clk.t.Before(deadlines[id]) {
				t.Fatalf("session %d expired at %v, before its deadline %v", id, clk.t, deadlines[id])
			}
			if late := clk.t.Sub(deadlines[id]); late > 110*time.Millisecond {
				t.Fatalf("session %d expired %v late", id, late)
			}
			delete(deadlines, id)
		}
	}
	if len(deadlines) != 0 {
		t.Fatalf("%d sessions never expired", len(deadlines))
	}
}

func BenchmarkTrackerTouch(b *testing.B) {
	tr, clk := newTestTracker()
	const n = 50000
	for i := range n {
		tr.Add(uint64(i), 10*time.Second)
	}
	b.ResetTimer()
	for i := range b.N {
		if i%1000 == 0 {
			clk.advance(time.Millisecond)
		}
		tr.Touch(uint64(i % n))
	}
}
