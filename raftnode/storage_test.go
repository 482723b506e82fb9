package raftnode

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func ents(term uint64, from, to uint64) []logEntry {
	var out []logEntry
	for i := from; i <= to; i++ {
		out = append(out, logEntry{Index: i, Term: term, Data: []byte{byte(i)}})
	}
	return out
}

// allEntries reads the whole log of s.
func allEntries(t *testing.T, s *diskStorage) []logEntry {
	t.Helper()
	var out []logEntry
	if err := s.forEachEntry(func(e logEntry) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDiskStorageTruncatesAndCompacts(t *testing.T) {
	dir := t.TempDir()
	// One segment per write, so that compaction can drop the oldest.
	s, err := openDiskStorageSegments(dir, false, nil, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.save(hardState{Term: 1, Vote: 1, Commit: 2}, ents(1, 1, 5), nil); err != nil {
		t.Fatal(err)
	}
	// A new leader overwrites 3..: entries 4 and 5 of term 1 must vanish.
	if err := s.save(hardState{Term: 2, Vote: 2, Commit: 3}, ents(2, 3, 3), nil); err != nil {
		t.Fatal(err)
	}
	s.close()
	s, err = openDiskStorageSegments(dir, false, nil, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	p, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if es := allEntries(t, s); len(es) != 3 || es[2].Term != 2 || es[1].Term != 1 || p.first != 1 || p.last != 3 {
		t.Fatalf("entries after overwrite: %+v (first %d last %d)", es, p.first, p.last)
	}
	if p.hardState.Term != 2 || p.hardState.Commit != 3 {
		t.Fatalf("hardstate %+v", p.hardState)
	}
	meta := snapshotMeta{Index: 2, Term: 1, ConfState: confState{Voters: []uint64{1}}}
	if err := s.saveSnapshotMeta(meta, 2); err != nil {
		t.Fatal(err)
	}
	p, _ = s.load()
	if es := allEntries(t, s); len(es) != 1 || es[0].Index != 3 || p.first != 3 || p.snapMeta.Index != 2 || len(p.snapMeta.ConfState.Voters) != 1 {
		t.Fatalf("after compaction: entries %+v meta %+v", es, p.snapMeta)
	}
	// A snapshot received from a leader replaces the whole log.
	meta.Index, meta.Term = 10, 3
	if err := s.save(hardState{Term: 3, Commit: 10}, ents(3, 11, 12), &meta); err != nil {
		t.Fatal(err)
	}
	p, _ = s.load()
	if es := allEntries(t, s); len(es) != 2 || es[0].Index != 11 || p.first != 11 || p.last != 12 || p.snapMeta.Index != 10 {
		t.Fatalf("after snapshot: entries %+v meta %+v", es, p.snapMeta)
	}
}

func TestDiskStorageSecondOpenFailsFast(t *testing.T) {
	dir := t.TempDir()
	s, err := openDiskStorage(dir, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	start := time.Now()
	if _, err := openDiskStorage(dir, true, nil, nil); !errors.Is(err, ErrStorage) {
		t.Fatalf("second open: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second open took %v", d)
	}
}

func TestSnapshotFileRoundTripAndCorruption(t *testing.T) {
	dir := t.TempDir()
	cs := confState{Voters: []uint64{1, 2, 3}}
	members := []memberMeta{{ID: 1, Name: "a", PeerURL: "h:1"}}
	payload := bytes.Repeat([]byte("state"), 10000)
	path, err := writeSnapshotFile(dir, 4, 99, cs, members, func(w io.Writer) error {
		_, err := w.Write(payload)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != snapFileName(4, 99) {
		t.Fatalf("name %s", path)
	}
	hdr, rc, err := openSnapshotPayload(path)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, payload) || hdr.index != 99 || hdr.term != 4 || len(hdr.confState.Voters) != 3 || hdr.members[0].Name != "a" {
		t.Fatalf("round trip: hdr %+v, %d bytes", hdr, len(got))
	}
	raw, _ := os.ReadFile(path)
	flipped := bytes.Clone(raw)
	flipped[len(flipped)/2] ^= 0xff
	torn := raw[:len(raw)-100]
	hugeLen := bytes.Clone(raw)
	copy(hugeLen[28:32], []byte{0xff, 0xff, 0xff, 0xff}) // conf state length
	for name, b := range map[string][]byte{"flipped": flipped, "torn": torn, "huge length": hugeLen, "empty": nil} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		if _, err := verifySnapshotFile(p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", name, err)
		}
	}
}

// A HardState that only moves the commit index costs no transaction (no
// fsync) of its own: it is written with the next durable write, with a
// snapshot's metadata, or on a clean close, and never lags a term or vote.
func TestCommitOnlyHardStateRidesTheNextWrite(t *testing.T) {
	dir := t.TempDir()
	s, err := openDiskStorage(dir, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	commits := 0
	s.beforeCommit = func() error { commits++; return nil }
	persistedHS := func() hardState {
		t.Helper()
		p, err := s.load()
		if err != nil {
			t.Fatal(err)
		}
		return p.hardState
	}
	if err := s.save(hardState{Term: 1, Vote: 1, Commit: 0}, ents(1, 1, 3), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.save(hardState{Term: 1, Vote: 1, Commit: 3}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if commits != 1 {
		t.Fatalf("%d transactions, want 1: a commit-only change must not write", commits)
	}
	if hs := persistedHS(); hs.Commit != 0 {
		t.Fatalf("commit %d on disk before the next write, want 0", hs.Commit)
	}
	// A vote change must be durable at once.
	if err := s.save(hardState{Term: 2, Vote: 2, Commit: 3}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if hs := persistedHS(); commits != 2 || hs.Term != 2 || hs.Vote != 2 || hs.Commit != 3 {
		t.Fatalf("after a vote: %d transactions, hardstate %+v", commits, hs)
	}
	// A commit-only change goes out with a snapshot's metadata.
	if err := s.save(hardState{Term: 2, Vote: 2, Commit: 5}, ents(2, 4, 5), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.save(hardState{Term: 2, Vote: 2, Commit: 6}, nil, nil); err != nil {
		t.Fatal(err)
	}
	meta := snapshotMeta{Index: 6, Term: 2, ConfState: confState{Voters: []uint64{1}}}
	if err := s.saveSnapshotMeta(meta, 0); err != nil {
		t.Fatal(err)
	}
	if hs := persistedHS(); hs.Commit < meta.Index {
		t.Fatalf("commit %d on disk is below the snapshot's index %d", hs.Commit, meta.Index)
	}
	// And with a clean close.
	if err := s.save(hardState{Term: 2, Vote: 2, Commit: 7}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s, err = openDiskStorage(dir, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if hs := persistedHS(); hs.Commit != 7 {
		t.Fatalf("commit %d after a clean close, want 7", hs.Commit)
	}
}
