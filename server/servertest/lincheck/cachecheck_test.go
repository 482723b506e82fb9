package lincheck

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckCache(t *testing.T) {
	initial := map[string]string{"/w": "", "/w/a": "", "/w/b": ""}
	acked := []AckedChange{{Path: "/w/a", Data: "1", Zxid: 10}, {Path: "/w/b", Data: "x", Zxid: 11}, {Path: "/w/a", Data: "2", Zxid: 12}}
	final := map[string]string{"/w": "", "/w/a": "2", "/w/b": "x"}
	view := func(z uint64, a, b string) CacheView {
		return CacheView{Zxid: z, Nodes: map[string]string{"/w": "", "/w/a": a, "/w/b": b}}
	}
	end := view(12, "2", "x")
	cases := []struct {
		name  string
		views []CacheView
		last  CacheView
		want  string // "" for no violation
	}{
		{"exact at every zxid", []CacheView{view(5, "", ""), view(10, "1", ""), view(11, "1", "x"), view(12, "2", "x")}, end, ""},
		{"between writes it shows the last one", []CacheView{view(11, "1", "x")}, end, ""},
		{"a write of unknown outcome is not placed", []CacheView{view(11, "lost?", "x")}, end, ""},
		{"a node out of date", []CacheView{view(12, "1", "x")}, end, "in between"},
		{"a node still initial", []CacheView{view(11, "1", "")}, end, "as it was at the start"},
		{"a write from later", []CacheView{view(11, "2", "x")}, end, "later"},
		{"zxid goes back", []CacheView{view(12, "2", "x"), view(11, "1", "x")}, end, "went back"},
		{"a node missing", []CacheView{{Zxid: 12, Nodes: map[string]string{"/w": "", "/w/a": "2"}}}, end, "does not hold /w/b"},
		{"synced, it is behind", nil, view(11, "1", "x"), "before the last write"},
		{"synced, it differs", nil, CacheView{Zxid: 12, Nodes: map[string]string{"/w": "", "/w/a": "2", "/w/b": "y"}}, "the subtree is"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := NewWatchLog(initial)
			for _, a := range acked {
				l.Acked(a)
			}
			for _, v := range c.views {
				l.CacheView(v)
			}
			errs := CheckCache(l, &c.last, 12, final)
			switch {
			case c.want == "" && len(errs) > 0:
				t.Fatalf("violations %v, want none", errs)
			case c.want != "" && len(errs) == 0:
				t.Fatalf("no violation, want one saying %q", c.want)
			case c.want != "" && (!strings.Contains(errs[0].Error(), c.want) || !errors.Is(errs[0], ErrViolation)):
				t.Fatalf("violation %v, want an ErrViolation saying %q", errs[0], c.want)
			}
		})
	}
}
