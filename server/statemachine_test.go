package server

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/session"
	"github.com/arbor-db/arbor/tree"
)

func quietSM() *stateMachine {
	return newStateMachine(slog.New(slog.DiscardHandler), newWaitRegistry())
}

// sampleLog is a log touching every command type, with a raft no-op entry
// (skipped alike everywhere).
func sampleLog() []raftnode.Entry {
	sid := sessionID(1)
	cmds := []command{
		{Type: cmdCreateSession, Origin: origin{1, 1}, TimeMs: 1000, SecretHash: session.HashSecret("s"), TimeoutMs: 5000},
		{Type: cmdTreeOps, Origin: origin{1, 2}, TimeMs: 900, Session: sid, Ops: []tree.Op{{Kind: tree.OpCreate, Path: "/a", Data: []byte("x"), Version: -1}}},
		{Type: cmdTreeOps, Origin: origin{1, 3}, TimeMs: 1100, Session: sid, Ops: []tree.Op{{Kind: tree.OpCreate, Path: "/a/e", Version: -1, Owner: sid, Sequential: true}}},
		{Type: cmdMemberAttrs, Origin: origin{2, 1}, TimeMs: 1200, Member: memberAttrs{Name: "m2", ClientURL: "h:1", PeerURL: "h:2"}},
		{Type: cmdTreeOps, Origin: origin{1, 4}, TimeMs: 1300, Session: sid, Multi: true, Ops: []tree.Op{
			{Kind: tree.OpSet, Path: "/a", Data: []byte("y"), Version: 0},
			{Kind: tree.OpCreate, Path: "/b", Version: -1},
		}},
		{Type: cmdTreeOps, Origin: origin{1, 5}, TimeMs: 1400, Session: sid, Ops: []tree.Op{{Kind: tree.OpDelete, Path: "/zz", Version: -1}}},
		{Type: cmdCloseSession, Origin: origin{1, 6}, TimeMs: 1500, Session: sid},
		{Type: cmdCreateSession, Origin: origin{1, 7}, TimeMs: 1600, SecretHash: session.HashSecret("t"), TimeoutMs: 9000},
	}
	var log []raftnode.Entry
	for _, c := range cmds {
		log = append(log, raftnode.Entry{Data: c.encode(nil)})
		if len(log) == 3 {
			log = append(log, raftnode.Entry{})
		}
	}
	for i := range log {
		log[i].Index, log[i].Term = uint64(i+1), 1
	}
	return log
}

func snapshotBytes(t *testing.T, sm *stateMachine) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := sm.Snapshot(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestApplyDeterministic(t *testing.T) {
	log := sampleLog()
	whole := quietSM()
	mustApply(t, whole, log)
	oneByOne := quietSM()
	for _, e := range log {
		mustApply(t, oneByOne, []raftnode.Entry{e})
	}
	want := snapshotBytes(t, whole)
	if got := snapshotBytes(t, oneByOne); !bytes.Equal(got, want) {
		t.Fatal("applying entry by entry gives different snapshot bytes than one batch")
	}
	if got := snapshotBytes(t, whole); !bytes.Equal(got, want) {
		t.Fatal("snapshot of unchanged state differs")
	}
	// Restore mid-way, then continue: same bytes.
	for cut := 1; cut < len(log); cut++ {
		first := quietSM()
		mustApply(t, first, log[:cut])
		restored := quietSM()
		if err := restored.Restore(uint64(cut), bytes.NewReader(snapshotBytes(t, first))); err != nil {
			t.Fatal(err)
		}
		if restored.appliedIndex() != uint64(cut) {
			t.Fatalf("applied index after restore %d, want %d", restored.appliedIndex(), cut)
		}
		mustApply(t, restored, log[cut:])
		if got := snapshotBytes(t, restored); !bytes.Equal(got, want) {
			t.Fatalf("restore at %d then apply gives different bytes", cut)
		}
	}
	if whole.appliedIndex() != uint64(len(log)) {
		t.Errorf("applied %d, want %d", whole.appliedIndex(), len(log))
	}
	if whole.sessions.Len() != 1 {
		t.Errorf("sessions %d, want 1 (one closed, one open)", whole.sessions.Len())
	}
}

func TestRestoreRejectsCorruption(t *testing.T) {
	sm := quietSM()
	mustApply(t, sm, sampleLog())
	b := snapshotBytes(t, sm)
	for _, i := range []int{0, 4, 10, len(b) / 2, len(b) - 1} {
		bad := bytes.Clone(b)
		bad[i] ^= 0x40
		if err := quietSM().Restore(1, bytes.NewReader(bad)); !errors.Is(err, errBadSnapshot) {
			t.Errorf("flipped byte %d: err %v, want errBadSnapshot", i, err)
		}
	}
	if err := quietSM().Restore(1, bytes.NewReader(b[:len(b)-5])); !errors.Is(err, errBadSnapshot) {
		t.Errorf("truncated: %v", err)
	}
}

func TestCloseSessionDeletesEphemeralsInOneStep(t *testing.T) {
	sm := quietSM()
	sid := sessionID(1)
	cmds := []command{
		{Type: cmdCreateSession, TimeMs: 1, TimeoutMs: 5000},
		{Type: cmdTreeOps, Session: sid, Ops: []tree.Op{{Kind: tree.OpCreate, Path: "/p", Version: -1}}},
		{Type: cmdTreeOps, Session: sid, Ops: []tree.Op{{Kind: tree.OpCreate, Path: "/p/e1", Version: -1, Owner: sid}}},
		{Type: cmdTreeOps, Session: sid, Ops: []tree.Op{{Kind: tree.OpCreate, Path: "/e2", Version: -1, Owner: sid}}},
		{Type: cmdCloseSession, Session: sid, TimeMs: 50},
	}
	for i, c := range cmds {
		mustApply(t, sm, []raftnode.Entry{{Index: uint64(i + 1), Data: c.encode(nil)}})
	}
	if got := sm.tree.Ephemerals(sid); len(got) != 0 {
		t.Fatalf("ephemerals left after close: %v", got)
	}
	if _, ok := sm.sessions.Get(sid); ok {
		t.Fatal("session still in the table")
	}
	st, ok := sm.tree.Exists("/p")
	if !ok || st.Pzxid != 5 {
		t.Fatalf("/p pzxid %d, want 5: the deletes happened at the close's zxid", st.Pzxid)
	}
}

func TestEphemeralNeedsLiveSession(t *testing.T) {
	waits := newWaitRegistry()
	sm := newStateMachine(slog.New(slog.DiscardHandler), waits)
	o := origin{7, 1}
	ch := waits.register(o)
	c := command{Type: cmdTreeOps, Origin: o, Session: 42, Ops: []tree.Op{{Kind: tree.OpCreate, Path: "/e", Version: -1, Owner: 42}}}
	mustApply(t, sm, []raftnode.Entry{{Index: 1, Data: c.encode(nil)}})
	r := <-ch
	if !errors.Is(r.Err, errSessionExpired) || r.Zxid != 1 {
		t.Fatalf("ephemeral create with no session: %+v", r)
	}
	if _, ok := sm.tree.Exists("/e"); ok {
		t.Fatal("node created for a dead session")
	}
}

func TestApplyTimeNeverGoesBack(t *testing.T) {
	sm := quietSM()
	cmds := []command{
		{Type: cmdTreeOps, TimeMs: 500, Ops: []tree.Op{{Kind: tree.OpCreate, Path: "/a", Version: -1}}},
		{Type: cmdTreeOps, TimeMs: 100, Ops: []tree.Op{{Kind: tree.OpCreate, Path: "/b", Version: -1}}},
	}
	for i, c := range cmds {
		mustApply(t, sm, []raftnode.Entry{{Index: uint64(i + 1), Data: c.encode(nil)}})
	}
	st, _ := sm.tree.Exists("/b")
	if st.Ctime != 500 {
		t.Fatalf("ctime %d of a command stamped earlier than the last applied, want 500", st.Ctime)
	}
}

func TestSessionIDsUniqueNonZero(t *testing.T) {
	seen := make(map[uint64]bool)
	for i := uint64(1); i <= 100000; i++ {
		id := sessionID(i)
		if id == 0 || seen[id] {
			t.Fatalf("session id %x for index %d is zero or repeated", id, i)
		}
		seen[id] = true
	}
	if sessionID(1)>>32 == 0 {
		t.Error("session ids do not look random")
	}
}

// A command applied twice (the network duplicated its proposal) or reaching
// the log behind a later command of its member changes nothing the second
// time, on every member alike, also after a snapshot restore.
func TestDuplicateAndReorderedCommandsApplyOnce(t *testing.T) {
	sid := sessionID(1)
	hello := command{Type: cmdCreateSession, Origin: origin{1, 10}, TimeMs: 1000, SecretHash: session.HashSecret("s"), TimeoutMs: 5000}
	set := func(seq uint64, data string) []byte {
		c := command{Type: cmdTreeOps, Origin: origin{1, seq}, TimeMs: 1000, Session: sid,
			Ops: []tree.Op{{Kind: tree.OpSet, Path: "/x", Data: []byte(data), Version: -1}}}
		return c.encode(nil)
	}
	create := command{Type: cmdTreeOps, Origin: origin{1, 11}, TimeMs: 1000, Session: sid,
		Ops: []tree.Op{{Kind: tree.OpCreate, Path: "/x", Version: -1}}}
	first := []raftnode.Entry{
		{Index: 1, Term: 1, Data: hello.encode(nil)},
		{Index: 2, Term: 1, Data: create.encode(nil)},
		{Index: 3, Term: 1, Data: set(12, "a")},
		{Index: 4, Term: 1, Data: set(12, "a")}, // duplicate
		{Index: 5, Term: 1, Data: set(14, "c")},
	}
	later := []raftnode.Entry{
		{Index: 6, Term: 1, Data: set(13, "b")}, // reordered behind seq 14
		{Index: 7, Term: 1, Data: set(14, "c")}, // duplicate after a restore
	}
	check := func(sm *stateMachine) {
		t.Helper()
		data, st, err := sm.tree.Get("/x")
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != "c" || st.Version != 2 {
			t.Fatalf("/x = %q at version %d, want \"c\" at version 2 (each set applied once)", data, st.Version)
		}
	}

	whole := quietSM()
	mustApply(t, whole, append(append([]raftnode.Entry(nil), first...), later...))
	check(whole)

	// The same log, cut by a snapshot: the restored member must skip alike.
	part := quietSM()
	mustApply(t, part, first)
	restored := quietSM()
	if err := restored.Restore(5, bytes.NewReader(snapshotBytes(t, part))); err != nil {
		t.Fatal(err)
	}
	mustApply(t, restored, later)
	check(restored)
	if !bytes.Equal(snapshotBytes(t, whole), snapshotBytes(t, restored)) {
		t.Fatal("a member restored from a snapshot differs from one that applied the whole log")
	}
}

// A stale command's waiter learns it was not applied.
func TestStaleCommandWaiterIsRefused(t *testing.T) {
	sm := quietSM()
	hello := command{Type: cmdCreateSession, Origin: origin{1, 5}, TimeMs: 1000, SecretHash: session.HashSecret("s"), TimeoutMs: 5000}
	stale := command{Type: cmdCreateSession, Origin: origin{1, 4}, TimeMs: 1000, SecretHash: session.HashSecret("t"), TimeoutMs: 5000}
	wait := sm.waits.register(stale.Origin)
	var bumped uint64
	sm.onStale = func(member, hw uint64) { bumped = hw }
	mustApply(t, sm, []raftnode.Entry{{Index: 1, Term: 1, Data: hello.encode(nil)}, {Index: 2, Term: 1, Data: stale.encode(nil)}})
	r := <-wait
	if !errors.Is(r.Refused, errStaleOrigin) {
		t.Fatalf("stale command's result %+v, want errStaleOrigin", r)
	}
	if bumped != 5 {
		t.Fatalf("onStale told hw %d, want 5", bumped)
	}
	if sm.sessions.Len() != 1 {
		t.Fatalf("%d sessions, want 1: the stale hello must not apply", sm.sessions.Len())
	}
}

func mustApply(t testing.TB, sm *stateMachine, ents []raftnode.Entry) {
	t.Helper()
	if err := sm.Apply(ents); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// A committed command this member cannot decode stops it (Apply fails)
// after applying what came before it in the batch.
func TestApplyUndecodableIsFatal(t *testing.T) {
	sm := quietSM()
	good := command{Type: cmdTreeOps, Origin: origin{1, 1}, TimeMs: 1, Ops: []tree.Op{{Kind: tree.OpCreate, Path: "/a", Version: -1}}}
	err := sm.Apply([]raftnode.Entry{{Index: 1, Term: 1, Data: good.encode(nil)}, {Index: 2, Term: 1, Data: []byte{1, 99, 0}}})
	if !errors.Is(err, errUndecodable) {
		t.Fatalf("Apply = %v, want errUndecodable", err)
	}
	if got := sm.appliedIndex(); got != 1 {
		t.Errorf("applied index %d, want 1 (the entry before the bad one)", got)
	}
	if _, ok := sm.tree.Exists("/a"); !ok {
		t.Errorf("the command before the undecodable one was not applied")
	}
}
