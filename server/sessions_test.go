package server

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/session"
	"github.com/arbor-db/arbor/tree"
)

// applier feeds commands to a state machine at increasing indexes.
type applier struct {
	t     *testing.T
	sm    *stateMachine
	index uint64
	seq   uint64
}

func newApplier(t *testing.T, version uint64) *applier {
	sm := quietSM()
	sm.clusterVersion.Store(version)
	return &applier{t: t, sm: sm}
}

func (a *applier) apply(c command) (applyResult, error) {
	a.t.Helper()
	a.index++
	a.seq++
	c.Origin = origin{Member: 1, Seq: a.seq}
	var got applyResult
	a.sm.waits.m[c.Origin] = waiter{ch: make(chan applyResult, 1)}
	ch := a.sm.waits.m[c.Origin].ch
	err := a.sm.Apply([]raftnode.Entry{{Index: a.index, Term: 1, Data: c.encode(nil)}})
	select {
	case got = <-ch:
	default:
	}
	return got, err
}

func (a *applier) must(c command) applyResult {
	a.t.Helper()
	r, err := a.apply(c)
	if err != nil {
		a.t.Fatalf("apply %+v: %v", c, err)
	}
	return r
}

func treeCreate(sess uint64, op tree.Op) command {
	op.Kind, op.Version = tree.OpCreate, -1
	return command{Type: cmdTreeOps, Session: sess, Ops: []tree.Op{op}}
}

// Expiry deletes the session's ephemerals and the session in one command,
// and reports it; a later command of the session is refused.
func TestExpireSessionsApply(t *testing.T) {
	a := newApplier(t, 2)
	var evs []sessionEvent
	a.sm.onSessions = func(e []sessionEvent) { evs = append(evs, e...) }
	s1 := a.must(command{Type: cmdCreateSession, SecretHash: session.HashSecret("a"), TimeoutMs: 2000}).Session
	s2 := a.must(command{Type: cmdCreateSession, SecretHash: session.HashSecret("b"), TimeoutMs: 2000}).Session
	a.must(treeCreate(s1, tree.Op{Path: "/e1", Owner: s1}))
	a.must(treeCreate(s2, tree.Op{Path: "/e2", Owner: s2}))
	ids := []uint64{s1, s2}
	slices.Sort(ids)
	// An unknown session in the list is skipped, the others go.
	a.must(command{Type: cmdExpireSessions, Sessions: []uint64{ids[0], ids[1], ^uint64(0)}})
	for _, p := range []string{"/e1", "/e2"} {
		if _, ok := a.sm.tree.Exists(p); ok {
			t.Errorf("%s survived its session's expiry", p)
		}
	}
	if a.sm.sessions.Len() != 0 {
		t.Errorf("%d sessions left", a.sm.sessions.Len())
	}
	var expired []uint64
	for _, e := range evs {
		if e.Kind == sessionExpired {
			expired = append(expired, e.ID)
		}
	}
	if !slices.Equal(expired, ids) {
		t.Errorf("expired events %v, want %v", expired, ids)
	}
	if r := a.must(treeCreate(s1, tree.Op{Path: "/late"})); !errors.Is(r.Err, errSessionExpired) {
		t.Errorf("write of an expired session: %v, want errSessionExpired", r.Err)
	}
	if r := a.must(command{Type: cmdSessionMoved, Session: s1, MovedTo: 2, MovedConn: 1}); !errors.Is(r.Err, errSessionExpired) {
		t.Errorf("move of an expired session: %v", r.Err)
	}
}

// The reaper's decision, at a given wall time: containers once emptied,
// TTL nodes childless and unmodified for their TTL.
func TestDueForReap(t *testing.T) {
	tr := tree.New()
	must := func(zxid uint64, now int64, op tree.Op) {
		t.Helper()
		if _, _, err := tr.Apply(zxid, now, op); err != nil {
			t.Fatalf("%+v: %v", op, err)
		}
	}
	create := func(zxid uint64, now int64, p string, container bool, ttl int64) {
		must(zxid, now, tree.Op{Kind: tree.OpCreate, Path: p, Version: -1, Container: container, TTLMs: ttl})
	}
	create(1, 1000, "/c-never", true, 0) // never had a child: stays
	create(2, 1000, "/c-empty", true, 0)
	create(3, 1000, "/c-empty/x", false, 0)
	must(4, 1000, tree.Op{Kind: tree.OpDelete, Path: "/c-empty/x", Version: -1})
	create(5, 1000, "/c-full", true, 0)
	create(6, 1000, "/c-full/x", false, 0)
	create(7, 1000, "/t-old", false, 500)
	create(8, 1000, "/t-kids", false, 500)
	create(9, 1000, "/t-kids/x", false, 0)
	create(10, 1000, "/t-set", false, 500)
	must(11, 1400, tree.Op{Kind: tree.OpSet, Path: "/t-set", Version: -1})
	names := func(now int64) []string {
		var out []string
		for _, r := range dueForReap(tr, now) {
			out = append(out, r.Path)
		}
		return out
	}
	cases := []struct {
		now  int64
		want []string
	}{
		{1000, []string{"/c-empty"}},
		{1499, []string{"/c-empty"}},
		{1500, []string{"/c-empty", "/t-old"}},
		{1899, []string{"/c-empty", "/t-old"}},
		{1900, []string{"/c-empty", "/t-old", "/t-set"}}, // a set restarts the TTL
	}
	for _, c := range cases {
		if got := names(c.now); !slices.Equal(got, c.want) {
			t.Errorf("at %d: due %v, want %v", c.now, got, c.want)
		}
	}
}

// Apply re-checks a reap against the node as it stands: a node recreated,
// modified or given a child since the leader looked is kept.
func TestReapApplyChecksAgain(t *testing.T) {
	a := newApplier(t, 2)
	a.must(treeCreate(0, tree.Op{Path: "/t", TTLMs: 100}))
	st, _ := a.sm.tree.Exists("/t")
	seen := reapNode{Kind: reapTTL, Path: "/t", Czxid: st.Czxid, Mzxid: st.Mzxid}
	// Too early by the command's own time: kept.
	if r := a.must(command{Type: cmdReap, TimeMs: st.Mtime + 50, Reap: []reapNode{seen}}); r.Reaped != 0 {
		t.Fatalf("reaped a TTL node before its TTL by the command's time")
	}
	a.must(command{Type: cmdTreeOps, Ops: []tree.Op{{Kind: tree.OpSet, Path: "/t", Version: -1}}, TimeMs: st.Mtime + 60})
	if r := a.must(command{Type: cmdReap, TimeMs: st.Mtime + 1000, Reap: []reapNode{seen}}); r.Reaped != 0 {
		t.Fatalf("reaped a TTL node modified since the leader looked")
	}
	st, _ = a.sm.tree.Exists("/t")
	seen.Mzxid = st.Mzxid
	a.must(treeCreate(0, tree.Op{Path: "/t/kid"}))
	if r := a.must(command{Type: cmdReap, TimeMs: st.Mtime + 2000, Reap: []reapNode{seen}}); r.Reaped != 0 {
		t.Fatalf("reaped a TTL node that has a child")
	}
	a.must(command{Type: cmdTreeOps, Ops: []tree.Op{{Kind: tree.OpDelete, Path: "/t/kid", Version: -1}}})
	if r := a.must(command{Type: cmdReap, TimeMs: st.Mtime + 3000, Reap: []reapNode{seen}}); r.Reaped != 1 {
		t.Fatalf("did not reap a due TTL node")
	}
	if _, ok := a.sm.tree.Exists("/t"); ok {
		t.Fatal("/t still exists")
	}
}

// The cluster version gate: a member runs only the command kinds of its
// version; a command above the cluster version is refused alike everywhere;
// the version only goes up.
func TestClusterVersionGate(t *testing.T) {
	old := newApplier(t, 1)
	old.sm.supported = 1
	if _, err := old.apply(command{Type: cmdExpireSessions, Sessions: []uint64{1}}); !errors.Is(err, errUndecodable) {
		t.Fatalf("an older member applying a version-2 command: %v, want it to stop", err)
	}

	a := newApplier(t, 1)
	if r := a.must(command{Type: cmdReap, Reap: []reapNode{{Kind: reapContainer, Path: "/x"}}}); !errors.Is(r.Err, errVersionGate) {
		t.Fatalf("a version-2 command at cluster version 1: %v, want errVersionGate", r.Err)
	}
	a.must(command{Type: cmdSetClusterVersion, Version: 2})
	if got := a.sm.clusterVersion.Load(); got != 2 {
		t.Fatalf("cluster version %d after raising to 2", got)
	}
	if r := a.must(command{Type: cmdLock, Session: 1, Lock: lockSpec{Path: "/l", Kind: lockWrite, Class: classLock}}); !errors.Is(r.Err, errVersionGate) {
		t.Fatalf("a version-3 command at cluster version 2: %v, want errVersionGate", r.Err)
	}
	a.must(command{Type: cmdSetClusterVersion, Version: 3})
	if _, err := a.apply(command{Type: cmdSetClusterVersion, Version: currentClusterVersion + 1}); !errors.Is(err, errUndecodable) {
		t.Fatalf("raising past what this member runs: %v, want it to stop", err)
	}
}

// While the cluster version is 1 the snapshot keeps the old format, so an
// older member can restore it; from 2 it carries the version.
func TestSnapshotFormatFollowsClusterVersion(t *testing.T) {
	a := newApplier(t, 1)
	b := snapshotBytes(t, a.sm)
	if b[4] != 2 {
		t.Fatalf("snapshot version %d at cluster version 1, want 2", b[4])
	}
	a.must(command{Type: cmdSetClusterVersion, Version: 2})
	b = snapshotBytes(t, a.sm)
	if b[4] != 3 {
		t.Fatalf("snapshot version %d at cluster version 2, want 3", b[4])
	}
	restored := quietSM()
	if err := restored.Restore(a.index, bytesReader(b)); err != nil {
		t.Fatal(err)
	}
	if restored.clusterVersion.Load() != 2 {
		t.Fatalf("restored cluster version %d", restored.clusterVersion.Load())
	}
	older := quietSM()
	older.supported = 1
	if err := older.Restore(a.index, bytesReader(b)); !errors.Is(err, errBadSnapshot) {
		t.Fatalf("an older member restoring a version-2 snapshot: %v", err)
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
