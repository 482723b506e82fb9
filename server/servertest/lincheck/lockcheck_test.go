package lincheck

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckLocks(t *testing.T) {
	l := NewLockLog()
	at := func(ms int) time.Time { return l.start.Add(time.Duration(ms) * time.Millisecond) }
	grant := func(client int, token uint64, asked, granted, end int) LockGrant {
		return LockGrant{Path: "/locks/0", Client: client, Session: string(rune('a' + client)), Token: token,
			Asked: at(asked), Granted: at(granted), End: at(end), Released: true}
	}
	lost := func(g LockGrant, ms int) LockGrant { g.Lost, g.LostCause = at(ms), "jeopardy"; return g }
	wrote := func(g LockGrant, accepted, stale bool) LockGrant {
		g.Wrote, g.Accepted, g.Stale = true, accepted, stale
		return g
	}
	cases := []struct {
		name      string
		grants    []LockGrant
		accepted  []uint64 // by the resource of /locks/0
		exclusive bool
		want      string // a violation's text; "" for none
	}{
		{name: "one after the other", exclusive: true,
			grants:   []LockGrant{grant(0, 10, 0, 1, 5), grant(1, 12, 2, 6, 9), grant(2, 15, 7, 10, 12)},
			accepted: []uint64{10, 12, 15}},
		{name: "overlap", exclusive: true, want: "two holders at once",
			grants: []LockGrant{grant(0, 10, 0, 1, 5), grant(1, 12, 2, 4, 9)}},
		{name: "overlap without mutual exclusion checked",
			grants: []LockGrant{grant(0, 10, 0, 1, 5), grant(1, 12, 2, 4, 9)}},
		{name: "overlap after the first holder learned it lost the lock", exclusive: true,
			grants: []LockGrant{lost(grant(0, 10, 0, 1, 50), 3), grant(1, 12, 2, 4, 9)}},
		{name: "lost only after the next grant", exclusive: true, want: "two holders at once",
			grants: []LockGrant{lost(grant(0, 10, 0, 1, 50), 5), grant(1, 12, 2, 4, 9)}},
		{name: "token reused by another session", want: "granted to two sessions",
			grants: []LockGrant{grant(0, 10, 0, 1, 5), grant(1, 10, 6, 7, 9)}},
		{name: "token lower than an earlier grant's", want: "its token is not higher",
			grants: []LockGrant{grant(0, 10, 0, 1, 5), grant(1, 8, 6, 7, 9)}},
		{name: "asked before the earlier grant returned: no order", exclusive: true,
			grants: []LockGrant{grant(0, 10, 0, 2, 5), grant(1, 8, 1, 7, 9)}},
		{name: "fence accepted a lower token", want: "accepted token 10 after token 12",
			grants: []LockGrant{grant(0, 10, 0, 1, 5)}, accepted: []uint64{12, 10}},
		{name: "stale write refused", exclusive: true,
			grants: []LockGrant{wrote(lost(grant(0, 10, 0, 1, 50), 3), false, true), grant(1, 12, 2, 4, 9)}},
		{name: "live holder refused", exclusive: true, want: "had not learned it lost the lock",
			grants: []LockGrant{wrote(grant(0, 10, 0, 1, 5), false, false), grant(1, 12, 2, 6, 9)}},
		{name: "never ended", want: "never ended",
			grants: []LockGrant{{Path: "/locks/0", Session: "a", Token: 1, Asked: at(0), Granted: at(1)}}},
	}
	for _, c := range cases {
		l.grants, l.accepted = c.grants, map[string][]uint64{"/locks/0": c.accepted}
		errs := CheckLocks(l, c.exclusive)
		if c.want == "" {
			if len(errs) > 0 {
				t.Errorf("%s: %v", c.name, errs)
			}
			continue
		}
		found := false
		for _, err := range errs {
			if strings.Contains(err.Error(), c.want) {
				found = true
			}
			if !errors.Is(err, ErrViolation) && !errors.Is(err, errNotEnded) {
				t.Errorf("%s: %v is not a violation", c.name, err)
			}
		}
		if !found {
			t.Errorf("%s: no %q among %v", c.name, c.want, errs)
		}
	}
}

func TestLockFigures(t *testing.T) {
	l := NewLockLog()
	at := func(ms int) time.Time { return l.start.Add(time.Duration(ms) * time.Millisecond) }
	l.grants = []LockGrant{
		{Path: "/l", Session: "a", Token: 1, Granted: at(1), End: at(8), Lost: at(3), Wrote: true, Stale: true},
		{Path: "/l", Session: "b", Token: 2, Granted: at(4), End: at(9), Released: true, Wrote: true, Accepted: true},
		{Path: "/l", Session: "c", Token: 3, Granted: at(10), End: at(12), Paused: true},
	}
	got := l.Figures()
	want := LockFigures{Grants: 3, Released: 1, Lost: 1, Handovers: 1, Paused: 1, Accepted: 1, StaleRefused: 1}
	if got != want {
		t.Errorf("figures %+v, want %+v", got, want)
	}
}
