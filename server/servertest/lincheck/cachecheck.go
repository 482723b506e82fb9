package lincheck

import (
	"fmt"
	"maps"
	"slices"
	"sort"
)

// Cache checking. A recipe.TreeCache of the watch workload's subtree
// follows it through the same faults as the watchers; every time its zxid
// moves, what it shows is recorded. The cache promises that it always shows
// the subtree exactly as it stood at its zxid, that the zxid never goes
// back, and that after Sync it holds everything committed before. With
// each write's data unique, CheckCache holds every recorded view to the
// acknowledged writes: a node showing an acknowledged write must show the
// last one acknowledged at or before the view's zxid, and none past it; a
// node showing its initial data must have had no acknowledged write by
// then. (A node showing data whose write had an unknown outcome cannot be
// placed, and is not checked.)

// CacheView is what a tree cache showed: the subtree (path to data) at
// Zxid.
type CacheView struct {
	Zxid  uint64
	Nodes map[string]string
}

// CacheView records what the workload's cache showed.
func (l *WatchLog) CacheView(v CacheView) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.views = append(l.views, v)
}

// CheckCache checks the recorded cache views against the acknowledged
// writes, and last, the view of a cache synced after the end (at or past
// the final write, marker; nil if none could be synced), against the
// subtree as it stands (final).
func CheckCache(l *WatchLog, last *CacheView, marker uint64, final map[string]string) []error {
	l.mu.Lock()
	views := slices.Clone(l.views)
	acked := slices.Clone(l.acked)
	initial := maps.Clone(l.initial)
	l.mu.Unlock()

	// Per path, its acknowledged writes by zxid; and each write by data.
	byPath := map[string][]AckedChange{}
	byData := map[string]AckedChange{}
	for _, a := range acked {
		byPath[a.Path] = append(byPath[a.Path], a)
		byData[a.Path+"\x00"+a.Data] = a
	}
	for _, as := range byPath {
		sort.Slice(as, func(i, j int) bool { return as[i].Zxid < as[j].Zxid })
	}
	var errs []error
	fail := func(format string, args ...any) {
		if len(errs) < 10 {
			errs = append(errs, fmt.Errorf("%w: tree cache: "+format, append([]any{ErrViolation}, args...)...))
		}
	}
	var prev uint64
	for _, v := range views {
		if v.Zxid < prev {
			fail("its zxid went back from %d to %d", prev, v.Zxid)
		}
		prev = v.Zxid
		for path, init := range initial {
			data, ok := v.Nodes[path]
			if !ok {
				fail("at zxid %d it does not hold %s, which is never deleted", v.Zxid, path)
				continue
			}
			as := byPath[path]
			// The last write of path acknowledged at or before the view.
			k := sort.Search(len(as), func(i int) bool { return as[i].Zxid > v.Zxid })
			switch a, isAcked := byData[path+"\x00"+data]; {
			case data == init && k > 0:
				fail("at zxid %d it shows %s as it was at the start, yet %q was acknowledged there at zxid %d", v.Zxid, path, as[k-1].Data, as[k-1].Zxid)
			case isAcked && a.Zxid > v.Zxid:
				fail("at zxid %d it shows %s = %q, written at zxid %d, later", v.Zxid, path, data, a.Zxid)
			case isAcked && k > 0 && as[k-1].Zxid != a.Zxid:
				fail("at zxid %d it shows %s = %q of zxid %d, yet %q was acknowledged there at zxid %d, in between", v.Zxid, path, data, a.Zxid, as[k-1].Data, as[k-1].Zxid)
			}
		}
	}
	if last == nil {
		return errs
	}
	if last.Zxid < marker {
		fail("synced after the end, it is at zxid %d, before the last write's %d", last.Zxid, marker)
	}
	if !maps.Equal(last.Nodes, final) {
		fail("synced after the end (zxid %d), it holds %v; the subtree is %v", last.Zxid, last.Nodes, final)
	}
	return errs
}

// CacheViews returns how many views of the tree cache were recorded.
func (l *WatchLog) CacheViews() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.views)
}
