package bench

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The watch workload's writer sets its node to value "w<seq>:..." for seq
// 1, 2, ...; the node starts at seq 0. A watcher learns which update an
// event reports from the event's data (persistent watches) or from the
// data it last read plus one (one-shot watches: the watch fires on the
// first change after the read).

// seqValue is the node's value for update seq.
func seqValue(seq int64, size int) []byte { return value(fmt.Sprintf("w%d:", seq), size) }

// parseSeq reads the update number back from a seqValue.
func parseSeq(data []byte) (int64, bool) {
	rest, ok := bytes.CutPrefix(data, []byte("w"))
	if !ok {
		return 0, false
	}
	i := bytes.IndexByte(rest, ':')
	if i <= 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(rest[:i]), 10, 64)
	return n, err == nil && n >= 0
}

// ackTable is when each of the writer's updates was acknowledged, as an
// offset from the run's start, read by every watcher as its events come.
type ackTable struct {
	start time.Time
	// at[seq]: the ack's offset plus one nanosecond; 0 while unacknowledged;
	// -1 when the write failed (it may or may not have been applied).
	at []atomic.Int64
	// sent[seq]: when the write was sent, the same way; set before it is.
	sent []atomic.Int64
}

func newAckTable(start time.Time, capacity int) *ackTable {
	return &ackTable{start: start, at: make([]atomic.Int64, capacity), sent: make([]atomic.Int64, capacity)}
}

func (a *ackTable) send(seq int64, t time.Time) { a.sent[seq].Store(int64(t.Sub(a.start)) + 1) }
func (a *ackTable) ack(seq int64, t time.Time)  { a.at[seq].Store(int64(t.Sub(a.start)) + 1) }
func (a *ackTable) fail(seq int64)              { a.at[seq].Store(-1) }

// sinceSent is the time from update seq's write request to t.
func (a *ackTable) sinceSent(seq int64, t time.Time) time.Duration {
	return max(t.Sub(a.start)-time.Duration(a.sent[seq].Load()-1), 0)
}

// uncertain reports whether update seq's write failed.
func (a *ackTable) uncertain(seq int64) bool {
	return seq > 0 && seq < int64(len(a.at)) && a.at[seq].Load() < 0
}

// latency is the time from update seq's acknowledgement to t; early when
// the event came before the writer heard the ack (the latency is then 0).
// ok is false for an update whose write failed.
func (a *ackTable) latency(seq int64, t time.Time) (d time.Duration, early, ok bool) {
	v := a.at[seq].Load()
	switch {
	case v < 0:
		return 0, false, false
	case v == 0:
		return 0, true, true
	}
	return max(t.Sub(a.start)-time.Duration(v-1), 0), false, true
}

// watchTrack is what one watcher saw. Only its watcher's goroutine calls
// its methods; seen is also read by the workload, to know when it has
// caught up.
type watchTrack struct {
	seen      atomic.Int64 // highest update this watcher knows of (notified or read)
	delivered int64        // events of acknowledged updates
	early     int64        // of which came before the ack
	missed    int64        // acknowledged updates it got no event for
	err       error        // the first check that failed
}

// checkFailed keeps the first failed check.
func (w *watchTrack) checkFailed(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf("%w: "+format, append([]any{ErrMismatch}, args...)...)
	}
}

// skipped counts the updates after seen and before seq as missed, but for
// those whose write failed (which may never have happened).
func (w *watchTrack) skipped(acks *ackTable, seq int64) int64 {
	var n int64
	for s := w.seen.Load() + 1; s < seq; s++ {
		if !acks.uncertain(s) {
			n++
		}
	}
	return n
}

// event records an event of update seq at t in h. A persistent watch
// (strict) must report every update once, in order; a one-shot watch's
// event is always of the update after the one last read.
func (w *watchTrack) event(acks *ackTable, h *shardedHistogram, seq int64, t time.Time, strict bool) {
	seen := w.seen.Load()
	if seq <= seen {
		w.checkFailed("event of update %d after update %d: repeated or out of order", seq, seen)
		return
	}
	if seq >= int64(len(acks.at)) {
		w.checkFailed("event of update %d, which was never written", seq)
		return
	}
	if miss := w.skipped(acks, seq); miss > 0 {
		w.missed += miss
		if strict {
			w.checkFailed("event of update %d after update %d: %d updates between them were not reported", seq, seen, miss)
		}
	}
	w.seen.Store(seq)
	d, early, ok := acks.latency(seq, t)
	if !ok {
		return // a failed write that landed: nobody knows when
	}
	w.delivered++
	if early {
		w.early++
	}
	h.record(d, acks.sinceSent(seq, t))
}

// read records that a one-shot watcher, setting its watch again, read
// update seq: the updates since its last event came without one.
func (w *watchTrack) read(acks *ackTable, seq int64) {
	seen := w.seen.Load()
	if seq < seen {
		w.checkFailed("read update %d after an event of update %d", seq, seen)
		return
	}
	w.missed += w.skipped(acks, seq+1)
	w.seen.Store(seq)
}

// finish counts the updates up to last that the watcher never saw as
// missed.
func (w *watchTrack) finish(acks *ackTable, last int64, strict bool) {
	seen := w.seen.Load()
	if seen >= last {
		return
	}
	miss := w.skipped(acks, last+1)
	w.missed += miss
	if strict && miss > 0 {
		w.checkFailed("watch saw updates up to %d of %d", seen, last)
	}
	w.seen.Store(last)
}

// shardedHistogram is the two latencies of the events (from the write's
// ack, from its request), recorded by many goroutines: a Histogram is 50
// KiB, too much for one per watcher of ten thousand.
type shardedHistogram struct {
	shards [16]struct {
		mu             sync.Mutex
		fromAck, fromW Histogram
	}
	next atomic.Uint32
}

// record adds an event's latencies to a shard picked round-robin.
func (s *shardedHistogram) record(fromAck, fromWrite time.Duration) {
	sh := &s.shards[s.next.Add(1)%uint32(len(s.shards))]
	sh.mu.Lock()
	sh.fromAck.Record(fromAck)
	sh.fromW.Record(fromWrite)
	sh.mu.Unlock()
}

// merged returns every shard's samples, from the ack and from the write.
func (s *shardedHistogram) merged() (fromAck, fromWrite *Histogram) {
	fromAck, fromWrite = new(Histogram), new(Histogram)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		fromAck.Merge(&sh.fromAck)
		fromWrite.Merge(&sh.fromW)
		sh.mu.Unlock()
	}
	return fromAck, fromWrite
}
