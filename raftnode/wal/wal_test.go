package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func entries(term, from, to uint64) []Entry {
	var out []Entry
	for i := from; i <= to; i++ {
		out = append(out, Entry{Index: i, Term: term, Data: []byte(fmt.Sprintf("e%d/%d", i, term))})
	}
	return out
}

func open(t *testing.T, dir string, opts Options) (*WAL, State) {
	t.Helper()
	w, st, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, st
}

// readAll reads every entry of st's range.
func readAll(t *testing.T, w *WAL, st State) []Entry {
	t.Helper()
	if st.Last == 0 {
		return nil
	}
	var out []Entry
	err := w.Entries(st.First, st.Last+1, func(e Entry) (bool, error) {
		out = append(out, Entry{Index: e.Index, Term: e.Term, Data: bytes.Clone(e.Data)})
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameEntries(t *testing.T, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d: %v", len(got), len(want), got)
	}
	for i := range got {
		if got[i].Index != want[i].Index || got[i].Term != want[i].Term || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// The log replays as raft wrote it: a later entry at index i replaces the
// entries from i on, a reset snapshot drops every entry, the newest
// HardState wins; the state read back after a reopen equals the state
// before it.
func TestReplayFollowsRaftsRules(t *testing.T) {
	for _, segBytes := range []int64{1, 200, 0} { // a segment per Save, a few, one
		t.Run(fmt.Sprint(segBytes), func(t *testing.T) {
			dir := t.TempDir()
			w, _ := open(t, dir, Options{SegmentBytes: segBytes, NoSync: true})
			steps := []struct {
				hs    string
				snap  *Snapshot
				reset bool
				ents  []Entry
			}{
				{hs: "t1", ents: entries(1, 1, 5)},
				{hs: "t2", ents: entries(2, 4, 6)}, // 4.. of term 1 replaced
				{ents: entries(2, 7, 7)},
				{snap: &Snapshot{Index: 3, Term: 1, Data: []byte("s3")}},
				{hs: "t3", ents: entries(3, 8, 9)},
			}
			for _, s := range steps {
				var hs []byte
				if s.hs != "" {
					hs = []byte(s.hs)
				}
				if err := w.Save(hs, s.snap, s.reset, s.ents); err != nil {
					t.Fatal(err)
				}
			}
			want := append(append(entries(1, 1, 3), entries(2, 4, 7)...), entries(3, 8, 9)...)
			check := func(w *WAL, st State) {
				t.Helper()
				if string(st.HardState) != "t3" || st.Snapshot == nil || st.Snapshot.Index != 3 || string(st.Snapshot.Data) != "s3" {
					t.Fatalf("state %+v", st)
				}
				if st.First != 1 || st.Last != 9 {
					t.Fatalf("first %d last %d", st.First, st.Last)
				}
				sameEntries(t, readAll(t, w, st), want)
				if term, err := w.Term(5); err != nil || term != 2 {
					t.Fatalf("term of 5: %d, %v", term, err)
				}
			}
			check(w, w.State())
			w.Close()
			w2, st := open(t, dir, Options{SegmentBytes: segBytes, NoSync: true})
			check(w2, st)

			// A snapshot from the leader replaces the log.
			if err := w2.Save([]byte("t4"), &Snapshot{Index: 20, Term: 4, Data: []byte("s20")}, true, entries(4, 21, 22)); err != nil {
				t.Fatal(err)
			}
			w2.Close()
			w3, st := open(t, dir, Options{SegmentBytes: segBytes, NoSync: true})
			if st.First != 21 || st.Last != 22 || st.Snapshot.Index != 20 || string(st.HardState) != "t4" {
				t.Fatalf("after a reset: %+v", st)
			}
			sameEntries(t, readAll(t, w3, st), entries(4, 21, 22))
		})
	}
}

// A crash in the middle of a Save leaves part of it: Open keeps every
// Save that completed and drops the rest; a read-only Open reports the
// tail and changes nothing.
func TestTornTailIsDropped(t *testing.T) {
	for _, cut := range []int{1, 7, 30, 57} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			dir := t.TempDir()
			w, _ := open(t, dir, Options{})
			if err := w.Save([]byte("hs"), nil, false, entries(1, 1, 3)); err != nil {
				t.Fatal(err)
			}
			w.Close()
			seg := filepath.Join(dir, segmentName(1))
			synced, _ := os.ReadFile(seg)
			// The next Save, written only in part.
			next := appendRecord(nil, kindEntry, 4, 1, []byte("e4/1"))
			next = appendRecord(next, kindEntry, 5, 1, []byte("e5/1"))
			if err := os.WriteFile(seg, append(bytes.Clone(synced), next[:len(next)-cut]...), 0o600); err != nil {
				t.Fatal(err)
			}

			ro, st, err := Open(dir, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			ro.Close()
			if st.Last < 3 || st.TornBytes == 0 {
				t.Fatalf("read-only: %+v", st)
			}
			if b, _ := os.ReadFile(seg); len(b) != len(synced)+len(next)-cut {
				t.Fatal("a read-only open changed the file")
			}

			w2, st := open(t, dir, Options{})
			if st.First != 1 || st.Last < 3 || st.TornBytes != 0 {
				t.Fatalf("after the crash: %+v", st)
			}
			// Appending goes on after what was kept.
			if err := w2.Save(nil, nil, false, entries(2, st.Last+1, st.Last+1)); err != nil {
				t.Fatal(err)
			}
			w2.Close()
			w3, st := open(t, dir, Options{})
			if st.TornBytes != 0 || len(readAll(t, w3, st)) != int(st.Last) {
				t.Fatalf("after appending past the torn tail: %+v", st)
			}
		})
	}
}

// A bad record in a segment older than the newest was synced whole before
// the next segment was started: that is corruption, not a crash.
func TestCorruptOlderSegmentFails(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, Options{SegmentBytes: 1, NoSync: true})
	for i := uint64(1); i <= 3; i++ {
		if err := w.Save(nil, nil, false, entries(1, i, i)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	seg := filepath.Join(dir, segmentName(1))
	b, _ := os.ReadFile(seg)
	b[len(b)-2] ^= 1
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open: %v", err)
	}
	if _, _, err := Open(dir, Options{ReadOnly: true}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read-only open: %v", err)
	}
}

// Compaction deletes whole segments below the snapshot, and what remains
// replays on its own: every segment starts with the state current then.
func TestCompactDropsOldSegments(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, Options{SegmentBytes: 100, NoSync: true})
	for i := uint64(1); i <= 40; i++ {
		if err := w.Save([]byte(fmt.Sprint("hs", i)), nil, false, entries(1, i, i)); err != nil {
			t.Fatal(err)
		}
	}
	before := w.Segments()
	if err := w.Save(nil, &Snapshot{Index: 30, Term: 1, Data: []byte("s30")}, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Compact(25); err != nil {
		t.Fatal(err)
	}
	st := w.State()
	if w.Segments() >= before || st.First > 26 || st.First < 2 || st.Last != 40 {
		t.Fatalf("segments %d -> %d, state %+v", before, w.Segments(), st)
	}
	w.Close()
	w2, st2 := open(t, dir, Options{SegmentBytes: 100, NoSync: true})
	if st2.First != st.First || st2.Last != 40 || string(st2.HardState) != "hs40" || st2.Snapshot == nil || st2.Snapshot.Index != 30 {
		t.Fatalf("after reopen: %+v", st2)
	}
	sameEntries(t, readAll(t, w2, st2), entries(1, st.First, 40))
	if _, err := w2.Term(st.First - 1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("term of a compacted entry: %v", err)
	}
}

// A failed sync may have lost the pages it was to write: the WAL never
// writes again.
func TestFailedSyncIsFinal(t *testing.T) {
	dir := t.TempDir()
	fail := errors.New("injected EIO")
	var injected error
	w, _ := open(t, dir, Options{BeforeSync: func() error { return injected }})
	if err := w.Save(nil, nil, false, entries(1, 1, 1)); err != nil {
		t.Fatal(err)
	}
	injected = fail
	if err := w.Save(nil, nil, false, entries(1, 2, 2)); !errors.Is(err, fail) {
		t.Fatalf("save with a failing sync: %v", err)
	}
	injected = nil
	if err := w.Save(nil, nil, false, entries(1, 3, 3)); !errors.Is(err, ErrFailed) {
		t.Fatalf("save after a failed sync: %v", err)
	}
}

// Create writes a whole log or none; a temp file a crash left is removed at
// the next Open.
func TestCreateIsAtomic(t *testing.T) {
	dir := t.TempDir()
	bad := errors.New("reading the old log failed")
	err := Create(dir, []byte("hs"), nil, func(yield func(Entry) error) error {
		if err := yield(entries(1, 1, 1)[0]); err != nil {
			return err
		}
		return bad
	})
	if !errors.Is(err, bad) {
		t.Fatalf("create: %v", err)
	}
	if ok, _ := Exists(dir); ok {
		t.Fatal("a failed Create left a log")
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(1)+tmpSuffix), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = Create(dir, []byte("hs"), &Snapshot{Index: 4, Term: 1, Data: []byte("s4")}, func(yield func(Entry) error) error {
		for _, e := range entries(1, 3, 9) {
			if err := yield(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	w, st := open(t, dir, Options{})
	if st.First != 3 || st.Last != 9 || st.Snapshot.Index != 4 || string(st.HardState) != "hs" {
		t.Fatalf("created: %+v", st)
	}
	sameEntries(t, readAll(t, w, st), entries(1, 3, 9))
	if m, _ := filepath.Glob(filepath.Join(dir, "*"+tmpSuffix)); len(m) != 0 {
		t.Fatalf("temp files left: %v", m)
	}
}

// FuzzOpen feeds Open arbitrary segment bytes: it must not panic, and what
// it accepts must read back consistently.
func FuzzOpen(f *testing.F) {
	var seed []byte
	seed = appendRecord(seed, kindState, 0, 0, []byte("hs"))
	seed = appendRecord(seed, kindEntry, 1, 1, []byte("a"))
	seed = appendRecord(seed, kindEntry, 2, 1, []byte("b"))
	seed = appendRecord(seed, kindSnapshot, 1, 1, []byte("s"))
	seed = appendRecord(seed, kindReset, 5, 2, []byte("r"))
	seed = appendRecord(seed, kindEntry, 6, 2, []byte("c"))
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		w, st, err := Open(dir, Options{NoSync: true})
		if err != nil {
			return
		}
		defer w.Close()
		if st.Last != 0 {
			n := 0
			err := w.Entries(st.First, st.Last+1, func(e Entry) (bool, error) {
				if e.Index != st.First+uint64(n) {
					t.Fatalf("entry %d read as %d", st.First+uint64(n), e.Index)
				}
				n++
				return true, nil
			})
			if err != nil || uint64(n) != st.Last-st.First+1 {
				t.Fatalf("read %d of [%d, %d]: %v", n, st.First, st.Last, err)
			}
		}
		// It appends after whatever it kept.
		if err := w.Save([]byte("x"), nil, false, []Entry{{Index: st.Last + 1, Term: 9, Data: []byte("z")}}); err != nil {
			t.Fatal(err)
		}
	})
}

// LoseUnsynced does what a power cut does: what was synced stays, what was
// only written goes.
func TestLoseUnsyncedKeepsWhatWasSynced(t *testing.T) {
	TrackSyncs()
	dir := t.TempDir()
	w, _ := open(t, dir, Options{})
	if err := w.Save([]byte("hs"), nil, false, entries(1, 1, 3)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	seg := filepath.Join(dir, segmentName(1))
	f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(appendRecord(nil, kindEntry, 4, 1, []byte("written, never synced"))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	lost, err := LoseUnsynced(dir)
	if err != nil || lost == 0 {
		t.Fatalf("lost %d bytes, %v", lost, err)
	}
	_, st := open(t, dir, Options{})
	if st.Last != 3 || st.TornBytes != 0 {
		t.Fatalf("after the power cut: %+v", st)
	}
}

// A power cut that comes while a sync is under way: the sync completes, its
// member goes on as if it is durable (a follower acknowledges it), so
// LoseUnsynced keeps it; the next sync fails.
func TestPowerCutDuringSyncKeepsThatSync(t *testing.T) {
	TrackSyncs()
	dir := t.TempDir()
	w, _ := open(t, dir, Options{})
	duringSync = func() { PowerCut(dir) }
	err := w.Save([]byte("hs"), nil, false, entries(1, 1, 3))
	duringSync = nil
	if err != nil {
		t.Fatalf("a sync that began before the cut: %v", err)
	}
	if err := w.Save(nil, nil, false, entries(4, 1, 4)); !errors.Is(err, errPowerCut) {
		t.Fatalf("a sync after the cut: %v, want the power cut", err)
	}
	w.Close()
	if _, err := LoseUnsynced(dir); err != nil {
		t.Fatal(err)
	}
	_, st := open(t, dir, Options{})
	if st.Last != 3 {
		t.Fatalf("after the power cut the log ends at %d, want 3 (the sync under way at the cut)", st.Last)
	}
}

// Restarts leave segments with a header and no entry; compaction goes past
// them, and the log stays bounded however often a member restarts.
func TestCompactPastRestartSegments(t *testing.T) {
	dir := t.TempDir()
	for i := uint64(1); i <= 6; i++ {
		w, _ := open(t, dir, Options{NoSync: true})
		if err := w.Save([]byte(fmt.Sprint("hs", i)), nil, false, entries(1, i, i)); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	w, st := open(t, dir, Options{NoSync: true})
	before := w.Segments()
	if err := w.Save(nil, &Snapshot{Index: 6, Term: 1, Data: []byte("s6")}, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Compact(6); err != nil {
		t.Fatal(err)
	}
	if w.Segments() != 1 {
		t.Fatalf("%d segments after compacting all of %d (state %+v)", w.Segments(), before, st)
	}
	w.Close()
	_, st = open(t, dir, Options{NoSync: true})
	if string(st.HardState) != "hs6" || st.Snapshot == nil || st.Snapshot.Index != 6 || st.Last != 0 {
		t.Fatalf("after reopen: %+v", st)
	}
}
