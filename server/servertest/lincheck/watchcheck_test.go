package lincheck

import (
	"errors"
	"testing"
)

func TestCheckWatch(t *testing.T) {
	initial := map[string]string{"/w": "", "/w/a": ""}
	acked := []AckedChange{{Path: "/w/a", Data: "1", Zxid: 10}, {Path: "/w/b", Data: "x", Zxid: 11}, {Path: "/w/a", Data: "2", Zxid: 12}}
	final := map[string]string{"/w": "", "/w/a": "2", "/w/b": "x"}
	good := []WatchEvent{
		{Type: "data", Path: "/w/a", Zxid: 10, Data: "1"},
		{Type: "created", Path: "/w/b", Zxid: 11, Data: "x"},
		{Type: "children", Path: "/w", Zxid: 11},
		{Type: "data", Path: "/w/a", Zxid: 12, Data: "2"},
	}
	resynced := []WatchEvent{
		{Type: "data", Path: "/w/a", Zxid: 10, Data: "1"},
		{Type: "resync", Path: "/w", Zxid: 11, Nodes: map[string]string{"/w": "", "/w/a": "1", "/w/b": "x"}},
		{Type: "data", Path: "/w/a", Zxid: 12, Data: "2"},
	}
	cases := []struct {
		name  string
		evs   []WatchEvent
		final map[string]string
		ok    bool
	}{
		{"every change once", good, final, true},
		{"a resync covers the gap", resynced, final, true},
		{"behind at the end: the missing tail is not a gap", good[:2], nil, true},
		{"one event dropped", append(append([]WatchEvent{}, good[:1]...), good[2:]...), final, false},
		{"one event twice", append(append([]WatchEvent{}, good...), good[3]), final, false},
		{"zxids go back", []WatchEvent{good[0], good[3], good[1], good[2]}, final, false},
		{"wrong data", []WatchEvent{good[0], good[1], good[2], {Type: "data", Path: "/w/a", Zxid: 12, Data: "3"}}, final, false},
	}
	for _, c := range cases {
		l := NewWatchLog(initial)
		for _, a := range acked {
			l.Acked(a)
		}
		for _, e := range c.evs {
			l.Event(1, e)
		}
		errs := CheckWatch(l, c.final)
		if c.ok && len(errs) > 0 {
			t.Errorf("%s: %v", c.name, errs)
		}
		if !c.ok && len(errs) == 0 {
			t.Errorf("%s: no violation found", c.name)
		}
		for _, err := range errs {
			if !errors.Is(err, ErrViolation) {
				t.Errorf("%s: %v does not wrap ErrViolation", c.name, err)
			}
		}
	}
}
