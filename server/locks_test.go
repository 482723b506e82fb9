package server

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/arbor-db/arbor/session"
	"github.com/arbor-db/arbor/tree"
)

func TestNumGranted(t *testing.T) {
	q := func(kinds string) []queued {
		var out []queued
		for i, k := range kinds {
			kind := map[rune]lockKind{'w': lockWrite, 'r': lockRead, 'c': lockCandidate}[k]
			out = append(out, queued{seq: int64(i), kind: kind})
		}
		return out
	}
	for _, tc := range []struct {
		queue string
		want  int
	}{
		{"", 0}, {"w", 1}, {"ww", 1}, {"r", 1}, {"rrr", 3}, {"rrwr", 2}, {"wrr", 1}, {"c", 1}, {"cc", 1},
	} {
		if got := numGranted(q(tc.queue)); got != tc.want {
			t.Errorf("numGranted(%q) = %d, want %d", tc.queue, got, tc.want)
		}
	}
}

func TestParseQueued(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
		kind lockKind
		seq  int64
	}{
		{"write-0000000042", true, lockWrite, 42},
		{"read-0000000001", true, lockRead, 1},
		{"cand-2147483647", true, lockCandidate, 2147483647},
		{"write-42", false, 0, 0},
		{"write-00000000x2", false, 0, 0},
		{"lock-0000000001", false, 0, 0},
		{"write-", false, 0, 0},
		{"write-+000000001", false, 0, 0},
	} {
		k, ok := parseQueued(tc.name)
		if ok != tc.ok || ok && (k.kind != tc.kind || k.seq != tc.seq) {
			t.Errorf("parseQueued(%q) = %+v, %v; want kind %d seq %d, %v", tc.name, k, ok, tc.kind, tc.seq, tc.ok)
		}
	}
}

// The replicated side of locks: queueing, grants at the release's zxid,
// one place per session, tries and withdrawals.
func TestApplyLocks(t *testing.T) {
	a := newApplier(t, currentClusterVersion)
	s1, s2, s3 := a.session(), a.session(), a.session()
	lock := func(s uint64, path string, kind lockKind, try bool) applyResult {
		return a.must(command{Type: cmdLock, Session: s, Lock: lockSpec{Path: path, Kind: kind, Try: try, Class: kind.class()}})
	}
	unlock := func(s uint64, path string, class lockClass, withdraw uint64) applyResult {
		return a.must(command{Type: cmdUnlock, Session: s, Lock: lockSpec{Path: path, Class: class, Withdraw: withdraw}})
	}
	r1 := lock(s1, "/a/b/l", lockWrite, false)
	if r1.Err != nil || !r1.Granted || r1.Results[0].Path != "/a/b/l/write-0000000000" {
		t.Fatalf("first lock: %+v", r1)
	}
	for _, p := range []string{"/a", "/a/b", "/a/b/l"} {
		if c, _, _ := a.sm.tree.Flags(p); !c {
			t.Errorf("%s is not a container", p)
		}
	}
	if r := lock(s1, "/a/b/l", lockWrite, false); !r.Granted || r.Results[0].Path != r1.Results[0].Path {
		t.Fatalf("the holder asking again: %+v", r)
	}
	if r := lock(s1, "/a/b/l", lockRead, false); !errors.Is(r.Err, errKindHeld) {
		t.Fatalf("the holder asking in the other mode: %v", r.Err)
	}
	if r := lock(s2, "/a/b/l", lockWrite, true); !errors.Is(r.Err, errWouldWait) {
		t.Fatalf("a try of a held lock: %v", r.Err)
	}
	r2 := lock(s2, "/a/b/l", lockWrite, false)
	r3 := lock(s3, "/a/b/l", lockRead, false)
	if r2.Granted || r3.Granted {
		t.Fatalf("waiters granted while held: %+v %+v", r2, r3)
	}
	// The holder's session ends: s2 holds at that zxid, and only s2.
	a.sm.grants = nil
	a.must(command{Type: cmdCloseSession, Session: s1, TimeMs: 1_700_000_000_000})
	if len(a.sm.grants) != 0 {
		t.Fatalf("grants left over after publish: %v", a.sm.grants)
	}
	if !grantedNow(a.sm.tree, "/a/b/l", "write-0000000001") || grantedNow(a.sm.tree, "/a/b/l", "read-0000000002") {
		t.Fatal("after the holder's end, the next writer should hold and the reader wait")
	}
	data, st, _ := a.sm.tree.Get(r2.Results[0].Path)
	var d lockNodeData
	if json.Unmarshal(data, &d) != nil || d.GrantedMs == 0 || st.Mzxid != a.index {
		t.Fatalf("granted child's data %s at mzxid %d: want a grant time written at zxid %d", data, st.Mzxid, a.index)
	}
	// A withdrawal only takes a child that still waits.
	if r := unlock(s2, "/a/b/l", classLock, r2.Results[0].Stat.Czxid); !errors.Is(r.Err, errStillQueued) {
		t.Fatalf("withdrawal of a holder: %v", r.Err)
	}
	if r := unlock(s3, "/a/b/l", classLock, r3.Results[0].Stat.Czxid); r.Err != nil {
		t.Fatalf("withdrawal of a waiter: %v", r.Err)
	}
	if r := unlock(s3, "/a/b/l", classLock, 0); !errors.Is(r.Err, errNotHeld) {
		t.Fatalf("unlock of nothing: %v", r.Err)
	}
	// Locks and an election on one path do not wait for each other.
	if r := a.must(command{Type: cmdLock, Session: s3, Lock: lockSpec{Path: "/a/b/l", Kind: lockCandidate, Value: []byte("v"), Class: classElection}}); !r.Granted {
		t.Fatalf("a candidacy beside a held lock: %+v", r)
	}
	if _, data, st, ok := currentLeader(a.sm.tree, "/a/b/l"); !ok || string(data) != "v" || st.EphemeralOwner != s3 {
		t.Fatalf("leader: %s %+v %v", data, st, ok)
	}
	// A user's child that is not a queue node is ignored.
	a.must(treeCreate(0, tree.Op{Path: "/a/b/l/notes", Version: -1}))
	if r := unlock(s2, "/a/b/l", classLock, 0); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := lock(s2, "/a/b/l", lockWrite, true); r.Err != nil || !r.Granted {
		t.Fatalf("a try of a free lock beside a user's node: %+v", r)
	}
}

// session creates a session and returns its id.
func (a *applier) session() uint64 {
	a.t.Helper()
	return a.must(command{Type: cmdCreateSession, SecretHash: session.HashSecret("s"), TimeoutMs: 2000}).Session
}
