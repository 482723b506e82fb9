package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func watchOpts(mode string, watchers, sessions int, writes int64) Options {
	return Options{WatchMode: mode, Watchers: watchers, Clients: sessions, Ops: writes, ValueSize: 32}
}

func TestWatchWorkloadPersistent(t *testing.T) {
	for _, tt := range []struct{ watchers, sessions int }{{1, 1}, {5, 2}, {50, 3}, {3, 8}} {
		t.Run(fmt.Sprintf("%dw%ds", tt.watchers, tt.sessions), func(t *testing.T) {
			sys := newMemSystem()
			res, err := Run(t.Context(), "watch", sys.env(watchOpts(WatchPersistent, tt.watchers, tt.sessions, 100)))
			if err != nil {
				t.Fatal(err)
			}
			want := int64(100 * tt.watchers)
			if res.Errors != 0 || res.Writes != 100 || res.EventsExpected != want || res.EventsDelivered != want || res.EventsMissed != 0 || res.Ops != want {
				t.Fatalf("%d writes, %d/%d events delivered, %d missed, %d ops, %d errors (%s); want every event", res.Writes, res.EventsDelivered, res.EventsExpected, res.EventsMissed, res.Ops, res.Errors, res.FirstError)
			}
			if res.Clients != min(tt.sessions, tt.watchers) || res.Watchers != tt.watchers || res.WatchMode != WatchPersistent {
				t.Fatalf("result says %d sessions, %d watchers, mode %q", res.Clients, res.Watchers, res.WatchMode)
			}
			if res.MaxMs < res.P99Ms || res.P99Ms < res.P50Ms {
				t.Fatalf("implausible latencies: %+v", res)
			}
			if n := sys.openWatches(); n != 0 || sys.open.Load() != 0 {
				t.Fatalf("after the run %d watches and %d sessions are left", n, sys.open.Load())
			}
		})
	}
}

func TestWatchWorkloadOneShotCountsWhatItMisses(t *testing.T) {
	sys := newMemSystem()
	res, err := Run(t.Context(), "watch", sys.env(watchOpts(WatchOneShot, 20, 4, 200)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.EventsExpected != 4000 || res.EventsDelivered+res.EventsMissed != 4000 || res.EventsDelivered < 20 {
		t.Fatalf("%d delivered + %d missed of %d expected, %d errors (%s); want them to add up", res.EventsDelivered, res.EventsMissed, res.EventsExpected, res.Errors, res.FirstError)
	}
	if res.Ops != res.EventsDelivered {
		t.Fatalf("%d latencies for %d events", res.Ops, res.EventsDelivered)
	}
}

// shortCatchUp makes a watcher that lost an event give up waiting soon.
func shortCatchUp(t *testing.T) {
	d := catchUp
	catchUp = 300 * time.Millisecond
	t.Cleanup(func() { catchUp = d })
}

func TestWatchWorkloadCatchesLostEvents(t *testing.T) {
	shortCatchUp(t)
	sys := newMemSystem()
	sys.dropEvery = 37
	res, err := Run(t.Context(), "watch", sys.env(watchOpts(WatchPersistent, 10, 2, 100)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.EventsMissed == 0 || res.EventsDelivered+res.EventsMissed != res.EventsExpected || !strings.Contains(res.FirstError, "not reported") && !strings.Contains(res.FirstError, "saw updates up to") {
		t.Fatalf("%d delivered, %d missed of %d, %d errors (%s); want the drops found", res.EventsDelivered, res.EventsMissed, res.EventsExpected, res.Errors, res.FirstError)
	}
}

func TestWatchWorkloadKeepsItsRate(t *testing.T) {
	sys := newMemSystem()
	o := watchOpts(WatchPersistent, 2, 1, 0)
	o.Rate, o.Duration = 100, 500*time.Millisecond
	res, err := Run(t.Context(), "watch", sys.env(o))
	if err != nil {
		t.Fatal(err)
	}
	if res.Writes < 40 || res.Writes > 52 || res.Errors != 0 || res.Rate != 100 {
		t.Fatalf("%d writes in 0.5 s at 100/s, %d errors (%s)", res.Writes, res.Errors, res.FirstError)
	}
}

func TestWatchSessionsSpreadOverTheMembers(t *testing.T) {
	sys := newMemSystem()
	env := sys.env(watchOpts(WatchPersistent, 6, 6, 5))
	env.Endpoints = []string{"a", "b", "c"}
	var (
		mu    sync.Mutex
		dials []string
	)
	orig := env.DialAt
	env.DialAt = func(ctx context.Context, eps []string) (Store, error) {
		mu.Lock()
		dials = append(dials, strings.Join(eps, ","))
		mu.Unlock()
		return orig(ctx, eps)
	}
	res, err := Run(t.Context(), "watch", env)
	if err != nil || res.Errors != 0 {
		t.Fatalf("err %v, %d errors (%s)", err, res.Errors, res.FirstError)
	}
	// The writer may use any member; the watchers' sessions one each.
	if want := []string{"a,b,c", "a", "b", "c", "a", "b", "c"}; !slices.Equal(dials, want) {
		t.Fatalf("dialed %q, want %q", dials, want)
	}
}

// onlyStore hides every method but the Store's.
type onlyStore struct{ Store }

func TestWatchNeedsTheMode(t *testing.T) {
	env := newMemSystem().env(watchOpts(WatchOneShot, 1, 1, 1))
	orig := env.DialAt
	env.DialAt = func(ctx context.Context, eps []string) (Store, error) {
		s, err := orig(ctx, eps)
		return onlyStore{s}, err
	}
	if _, err := Run(t.Context(), "watch", env); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
	env.Options.WatchMode = "sometimes"
	if _, err := Run(t.Context(), "watch", env); err == nil || errors.Is(err, ErrUnsupported) {
		t.Fatalf("unknown mode: err = %v", err)
	}
}

func TestSeqValue(t *testing.T) {
	for _, seq := range []int64{0, 1, 12345} {
		if got, ok := parseSeq(seqValue(seq, 100)); !ok || got != seq {
			t.Errorf("parseSeq(seqValue(%d)) = %d, %v", seq, got, ok)
		}
	}
	for _, bad := range []string{"", "w", "w:", "x1:", "w-1:", "w12"} {
		if _, ok := parseSeq([]byte(bad)); ok {
			t.Errorf("parseSeq(%q) ok", bad)
		}
	}
}

func TestWatchTrack(t *testing.T) {
	type step struct {
		read bool  // a one-shot's read, else an event
		seq  int64 // the update
	}
	for _, tt := range []struct {
		name                     string
		strict                   bool
		failed                   []int64 // writes that failed
		steps                    []step
		last                     int64
		delivered, missed, early int64
		wantErr                  string
	}{
		{name: "every update", strict: true, steps: []step{{false, 1}, {false, 2}, {false, 3}}, last: 3, delivered: 3},
		{name: "gap", strict: true, steps: []step{{false, 1}, {false, 4}}, last: 4, delivered: 2, missed: 2, wantErr: "2 updates between them were not reported"},
		{name: "gap of failed writes", strict: true, failed: []int64{2, 3}, steps: []step{{false, 1}, {false, 4}}, last: 4, delivered: 2},
		{name: "repeat", strict: true, steps: []step{{false, 1}, {false, 1}}, last: 1, delivered: 1, wantErr: "repeated or out of order"},
		{name: "stops early", strict: true, steps: []step{{false, 1}}, last: 3, delivered: 1, missed: 2, wantErr: "saw updates up to 1 of 3"},
		{name: "one-shot", steps: []step{{false, 1}, {true, 3}, {false, 4}, {true, 4}, {false, 5}, {true, 7}}, last: 7, delivered: 3, missed: 4},
		{name: "one-shot ends armed", steps: []step{{false, 1}, {true, 2}}, last: 5, delivered: 1, missed: 4},
		{name: "one-shot reads the past", steps: []step{{false, 2}, {true, 1}}, last: 2, delivered: 1, missed: 1, wantErr: "read update 1 after an event of update 2"},
		{name: "never written", strict: true, steps: []step{{false, 99}}, last: 1, missed: 1, wantErr: "never written"},
		{name: "before the ack", strict: true, steps: []step{{false, 1}, {false, 2}}, last: 2, delivered: 2, early: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			acks := newAckTable(start, 10)
			for s := int64(1); s <= tt.last; s++ {
				acks.send(s, start)
				if slices.Contains(tt.failed, s) {
					acks.fail(s)
				} else if tt.early == 0 || s != tt.last {
					acks.ack(s, start.Add(time.Duration(s)*time.Millisecond))
				}
			}
			var (
				w watchTrack
				h shardedHistogram
			)
			for _, s := range tt.steps {
				if s.read {
					w.read(acks, s.seq)
				} else {
					w.event(acks, &h, s.seq, start.Add(time.Duration(s.seq)*time.Millisecond+time.Millisecond), tt.strict)
				}
			}
			w.finish(acks, tt.last, tt.strict)
			if w.delivered != tt.delivered || w.missed != tt.missed || w.early != tt.early {
				t.Errorf("delivered %d, missed %d, early %d; want %d, %d, %d", w.delivered, w.missed, w.early, tt.delivered, tt.missed, tt.early)
			}
			if tt.wantErr == "" && w.err != nil || tt.wantErr != "" && (w.err == nil || !strings.Contains(w.err.Error(), tt.wantErr) || !errors.Is(w.err, ErrMismatch)) {
				t.Errorf("err %v, want %q", w.err, tt.wantErr)
			}
			fromAck, fromWrite := h.merged()
			if fromAck.Count() != uint64(tt.delivered) || fromWrite.Count() != uint64(tt.delivered) {
				t.Errorf("%d and %d latencies recorded for %d events", fromAck.Count(), fromWrite.Count(), tt.delivered)
			}
			var top int64 // the latest update an event reported: sent at start
			for _, s := range tt.steps {
				if !s.read && s.seq <= tt.last {
					top = max(top, s.seq)
				}
			}
			if tt.early == 0 && tt.delivered > 0 && (fromAck.Max() != time.Millisecond || fromWrite.Max() != time.Duration(top+1)*time.Millisecond) {
				t.Errorf("latency %v from the ack, %v from the write; want 1ms, %dms", fromAck.Max(), fromWrite.Max(), top+1)
			}
		})
	}
}

func TestSetWatched(t *testing.T) {
	sys := newMemSystem()
	o := opsOpts(4, 200)
	o.Watchers, o.WatchSessions = 30, 3
	res, err := Run(t.Context(), "set-watched", sys.env(o))
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Ops != 200 || res.Watchers != 30 || res.EventsExpected != 6000 || res.EventsDelivered < 6000 || res.EventsMissed != 0 {
		t.Fatalf("%d sets, %d errors (%s), %d/%d events, %d missed", res.Ops, res.Errors, res.FirstError, res.EventsDelivered, res.EventsExpected, res.EventsMissed)
	}
	if n := sys.openWatches(); n != 0 || sys.open.Load() != 0 {
		t.Fatalf("%d watches and %d sessions left", n, sys.open.Load())
	}
}

func TestSetWatchedCatchesLostEvents(t *testing.T) {
	shortCatchUp(t)
	sys := newMemSystem()
	sys.dropEvery = 50
	o := opsOpts(2, 100)
	o.Watchers, o.WatchSessions = 5, 2
	res, err := Run(t.Context(), "set-watched", sys.env(o))
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.EventsMissed == 0 || !strings.Contains(res.FirstError, "acknowledged sets") {
		t.Fatalf("%d errors (%s), %d missed: want the drops found", res.Errors, res.FirstError, res.EventsMissed)
	}
}

func TestWatchMemory(t *testing.T) {
	defer func(d time.Duration) { watchMemSettle = d }(watchMemSettle)
	watchMemSettle = 0
	for _, mode := range []string{WatchPersistent, WatchOneShot} {
		t.Run(mode, func(t *testing.T) {
			sys := newMemSystem()
			env := sys.env(Options{Clients: 3, Watchers: 250, WatchMode: mode})
			env.Prefix = "/b"
			env.Heap = func(context.Context) (uint64, error) { return uint64(100 * sys.openWatches()), nil }
			res, err := Run(t.Context(), "watch-memory", env)
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 || res.Ops != 250 || res.PathBytes != len("/b/m/0000000") {
				t.Fatalf("%d watches, %d errors (%s), paths of %d bytes", res.Ops, res.Errors, res.FirstError, res.PathBytes)
			}
			// The fake's heap is 100 B a watch, counted after they are set.
			if res.HeapAfterBytes-res.HeapBeforeBytes != 25000 {
				t.Fatalf("heap %d -> %d, want 25000 more", res.HeapBeforeBytes, res.HeapAfterBytes)
			}
			if n := sys.openWatches(); n != 0 || sys.open.Load() != 0 {
				t.Fatalf("%d watches and %d sessions left", n, sys.open.Load())
			}
		})
	}
}
