package lincheck

import (
	"fmt"
	"maps"
	"sync"
)

// Watch checking. A writer changes nodes under one subtree and records the
// changes the cluster acknowledged (path, data, zxid); watchers hold one
// recursive watch on the subtree each, through disconnects, resumes and
// new sessions, and record every event in the order received. CheckWatch
// then holds each watcher to what the protocol promises: zxids never go
// back and nothing is reported twice; every acknowledged change inside the
// span a watcher covered reaches it (unless a resync, which replaces the
// watcher's view, covers it); and the view the events build equals the
// subtree as it stands at the end.

// WatchEvent is one event as a watcher received it.
type WatchEvent struct {
	Type  string // created, deleted, data, children, resync
	Path  string
	Zxid  uint64
	Data  string
	Nodes map[string]string // resync: the watched subtree at Zxid, path to data
}

// AckedChange is a write the cluster acknowledged: Path has Data since Zxid
// (Deleted: Path is gone since Zxid).
type AckedChange struct {
	Path    string
	Data    string
	Zxid    uint64
	Deleted bool
}

// WatchLog records a watch workload. It is safe for concurrent use.
type WatchLog struct {
	mu       sync.Mutex
	initial  map[string]string // the subtree when the watchers started
	acked    []AckedChange
	watchers map[int][]WatchEvent
	views    []CacheView // what the tree cache showed, in order
}

// NewWatchLog returns a log whose watchers start from the subtree initial
// (path to data), as it stood before any of them registered and before the
// writer began.
func NewWatchLog(initial map[string]string) *WatchLog {
	return &WatchLog{initial: maps.Clone(initial), watchers: map[int][]WatchEvent{}}
}

// Acked records an acknowledged change.
func (l *WatchLog) Acked(c AckedChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked = append(l.acked, c)
}

// Event records an event received by watcher w.
func (l *WatchLog) Event(w int, ev WatchEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.watchers[w] = append(l.watchers[w], ev)
}

// Seen reports whether watcher w has received an event at zxid or later.
func (l *WatchLog) Seen(w int, zxid uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.watchers[w]
	return len(evs) > 0 && evs[len(evs)-1].Zxid >= zxid
}

// Last returns the zxid of the last event watcher w received (0: none).
func (l *WatchLog) Last(w int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.watchers[w]
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Zxid
}

// Counts returns the number of acknowledged changes and of events received
// (in all) and resyncs.
func (l *WatchLog) Counts() (acked, events, resyncs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, evs := range l.watchers {
		events += len(evs)
		for _, e := range evs {
			if e.Type == "resync" {
				resyncs++
			}
		}
	}
	return len(l.acked), events, resyncs
}

// CheckWatch checks every watcher against the acknowledged changes and the
// subtree's final state (path to data, read after the last change).
func CheckWatch(l *WatchLog, final map[string]string) []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for w, evs := range l.watchers {
		errs = append(errs, checkWatcher(w, evs, l.initial, l.acked, final)...)
	}
	return errs
}

func checkWatcher(w int, evs []WatchEvent, initial map[string]string, acked []AckedChange, final map[string]string) []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: watcher %d: "+format, append([]any{ErrViolation, w}, args...)...))
	}
	view := maps.Clone(initial)
	type key struct {
		zxid       uint64
		path, kind string
	}
	seen := map[key]bool{}
	// gaps are the zxid spans (after, upto] that resyncs cover: changes in
	// them are not reported one by one.
	type span struct{ after, upto uint64 }
	var gaps []span
	var last uint64
	for i, e := range evs {
		if e.Zxid < last {
			fail("event %d (%s %s at %d) after one at zxid %d: zxids went back", i, e.Type, e.Path, e.Zxid, last)
		}
		if e.Type == "resync" {
			gaps = append(gaps, span{last, e.Zxid})
			view = maps.Clone(e.Nodes)
			last = e.Zxid
			continue
		}
		k := key{e.Zxid, e.Path, e.Type}
		if seen[k] {
			fail("%s %s at zxid %d reported twice", e.Type, e.Path, e.Zxid)
		}
		seen[k] = true
		switch e.Type {
		case "created", "data":
			view[e.Path] = e.Data
		case "deleted":
			delete(view, e.Path)
		}
		last = e.Zxid
	}
	inGap := func(z uint64) bool {
		for _, g := range gaps {
			if z > g.after && z <= g.upto {
				return true
			}
		}
		return false
	}
	for _, c := range acked {
		if c.Zxid > last || inGap(c.Zxid) {
			continue // not yet reached, or covered by a resync
		}
		want := key{c.Zxid, c.Path, "data"}
		if c.Deleted {
			want.kind = "deleted"
		}
		if !seen[want] {
			if alt := (key{c.Zxid, c.Path, "created"}); !c.Deleted && seen[alt] {
				continue
			}
			fail("the acknowledged change of %s at zxid %d never reached it (it got events up to zxid %d)", c.Path, c.Zxid, last)
		}
	}
	if final != nil && !maps.Equal(view, final) {
		fail("the view its events build differs from the subtree: %v", diffViews(view, final))
	}
	return errs
}

// diffViews lists the paths where got and want differ.
func diffViews(got, want map[string]string) []string {
	var out []string
	for p, v := range want {
		if g, ok := got[p]; !ok {
			out = append(out, fmt.Sprintf("%s missing (want %q)", p, v))
		} else if g != v {
			out = append(out, fmt.Sprintf("%s=%q (want %q)", p, g, v))
		}
	}
	for p, v := range got {
		if _, ok := want[p]; !ok {
			out = append(out, fmt.Sprintf("%s=%q should not exist", p, v))
		}
	}
	return out
}
