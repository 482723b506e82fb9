package raftnode

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// writeLegacyDir writes a data dir as versions before the WAL did: the log,
// HardState and snapshot metadata in raft.db's buckets.
func writeLegacyDir(t *testing.T, dir string, hs hardState, sm snapshotMeta, es []logEntry) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "raft.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEntries, bucketMeta, bucketMembers} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		hb, _ := marshalHardState(&hs)
		if err := tx.Bucket(bucketMeta).Put(keyHardState, hb); err != nil {
			return err
		}
		sb, _ := marshalSnapMeta(&sm)
		if err := tx.Bucket(bucketMeta).Put(keySnapshot, sb); err != nil {
			return err
		}
		for i := range es {
			v, _ := marshalEntry(&es[i])
			if err := tx.Bucket(bucketEntries).Put(u64key(es[i].Index), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A data dir an older version wrote is converted at open: the same log,
// HardState and snapshot metadata, now in the WAL, and raft.db's old
// buckets emptied, so a second open reads the WAL alone.
func TestLegacyLogIsConverted(t *testing.T) {
	dir := t.TempDir()
	hs := hardState{Term: 3, Vote: 2, Commit: 8}
	sm := snapshotMeta{Index: 4, Term: 2, ConfState: confState{Voters: []uint64{1, 2, 3}}}
	want := append(ents(2, 3, 6), ents(3, 7, 9)...)
	writeLegacyDir(t, dir, hs, sm, want)

	for round := range 2 {
		s, err := openDiskStorage(dir, false, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.load()
		if err != nil {
			t.Fatal(err)
		}
		if p.hardState != hs || p.snapMeta.Index != 4 || p.snapMeta.Term != 2 || len(p.snapMeta.ConfState.Voters) != 3 || p.first != 3 || p.last != 9 {
			t.Fatalf("round %d: loaded %+v", round, p)
		}
		got := allEntries(t, s)
		if len(got) != len(want) {
			t.Fatalf("round %d: %d entries, want %d", round, len(got), len(want))
		}
		for i := range got {
			if got[i].Index != want[i].Index || got[i].Term != want[i].Term {
				t.Fatalf("round %d: entry %d is %+v", round, i, got[i])
			}
		}
		legacy, err := s.loadLegacy()
		if err != nil {
			t.Fatal(err)
		}
		if !legacy.empty() {
			t.Fatalf("round %d: raft.db still holds the old log: %+v", round, legacy)
		}
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
	}
	snapDir := filepath.Join(dir, "snap")
	if err := os.MkdirAll(snapDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := writeSnapshotFile(snapDir, 2, 4, sm.ConfState, nil, func(w io.Writer) error {
		_, err := w.Write([]byte("state"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := CheckDataDir(dir); err != nil {
		t.Fatalf("converted dir: %v", err)
	}
}

// A crash after the WAL was created but before raft.db's old buckets were
// emptied: the WAL is the log (it may be newer), the stale buckets go.
func TestInterruptedConversionKeepsTheWAL(t *testing.T) {
	dir := t.TempDir()
	writeLegacyDir(t, dir, hardState{Term: 1, Vote: 1, Commit: 2}, snapshotMeta{}, ents(1, 1, 3))
	s, err := openDiskStorage(dir, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.save(hardState{Term: 2, Vote: 1, Commit: 4}, ents(2, 4, 5), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	// Put the stale buckets back, as if the emptying never committed.
	if err := os.Rename(filepath.Join(dir, "raft.db"), filepath.Join(dir, "new.db")); err != nil {
		t.Fatal(err)
	}
	writeLegacyDir(t, dir, hardState{Term: 1, Vote: 1, Commit: 2}, snapshotMeta{}, ents(1, 1, 3))
	s, err = openDiskStorage(dir, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	p, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if p.hardState.Term != 2 || p.last != 5 {
		t.Fatalf("loaded %+v: the stale raft.db won over the WAL", p)
	}
	if legacy, _ := s.loadLegacy(); !legacy.empty() {
		t.Fatal("stale buckets left")
	}
}
