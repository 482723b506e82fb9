package raftnode

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"go.etcd.io/raft/v3"
)

func bigEnts(term, from, to uint64, size int) []logEntry {
	var out []logEntry
	for i := from; i <= to; i++ {
		out = append(out, logEntry{Index: i, Term: term, Data: bytes.Repeat([]byte{byte(i)}, size)})
	}
	return out
}

func checkEnts(t *testing.T, got []logEntry, from, to, term uint64) {
	t.Helper()
	if uint64(len(got)) != to-from+1 {
		t.Fatalf("%d entries, want %d..%d", len(got), from, to)
	}
	for i, e := range got {
		if e.Index != from+uint64(i) || e.Term != term || e.Data[0] != byte(e.Index) {
			t.Fatalf("entry %d: index %d term %d data %d", i, e.Index, e.Term, e.Data[0])
		}
	}
}

// The cache keeps only the newest entries within its limit; raft still
// reads the whole log, older entries from raft.db, in order, within
// maxSize; conflicting appends and compaction behave as MemoryStorage's.
func TestLogStoreBoundedCacheReadsOlderEntriesFromDisk(t *testing.T) {
	disk, err := openDiskStorage(t.TempDir(), true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer disk.close()
	const limit = 1 << 20
	s := newLogStore(disk, limit)
	s.reset(snapshotMeta{}, 0)
	for i := uint64(1); i <= 200; i += 10 {
		es := bigEnts(1, i, i+9, 64<<10)
		if err := disk.save(hardState{Term: 1, Commit: i + 9}, es, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.append(es); err != nil {
			t.Fatal(err)
		}
		if got := s.cachePub.Load(); got > limit {
			t.Fatalf("cache holds %d bytes, limit %d", got, limit)
		}
	}
	if s.cachePeak.Load() > limit || s.cachePeak.Load() == 0 {
		t.Fatalf("cache peak %d", s.cachePeak.Load())
	}
	if first := s.cacheFirst(); first < 180 || first > 195 {
		t.Fatalf("cache starts at %d", first)
	}
	reads := s.diskReads.Load()
	all, err := s.Entries(1, 201, math.MaxUint64)
	if err != nil {
		t.Fatal(err)
	}
	checkEnts(t, all, 1, 200, 1)
	if s.diskReads.Load() == reads {
		t.Fatal("old entries did not come from disk")
	}
	// maxSize bounds a read across disk and cache; one entry always goes.
	part, _ := s.Entries(170, 201, 5*(64<<10)+100)
	checkEnts(t, part, 170, 174, 1)
	one, _ := s.Entries(3, 10, 1)
	checkEnts(t, one, 3, 3, 1)
	for _, i := range []uint64{5, 199} { // on disk, cached
		if term, err := s.Term(i); err != nil || term != 1 {
			t.Fatalf("term of %d: %d, %v", i, term, err)
		}
	}
	// A new leader overwrites from 150 (in the cache? no: on disk).
	es := bigEnts(2, 150, 152, 10)
	if err := disk.save(hardState{Term: 2, Commit: 149}, es, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.append(es); err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastIndex(); last != 152 {
		t.Fatalf("last %d", last)
	}
	got, _ := s.Entries(148, 153, math.MaxUint64)
	checkEnts(t, got[2:], 150, 152, 2)
	checkEnts(t, got[:2], 148, 149, 1)
	// An overwrite inside the cache.
	es = bigEnts(3, 152, 153, 10)
	disk.save(hardState{Term: 3, Commit: 149}, es, nil)
	s.append(es)
	got, _ = s.Entries(150, 154, math.MaxUint64)
	checkEnts(t, got[:2], 150, 151, 2)
	checkEnts(t, got[2:], 152, 153, 3)
	// Compaction reads the compaction point's term before raft.db drops it.
	if _, err := s.createSnapshot(140, confState{Voters: []uint64{1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.compact(100); err != nil {
		t.Fatal(err)
	}
	if err := disk.saveSnapshotMeta(s.snap, 100); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.FirstIndex(); first != 101 {
		t.Fatalf("first %d", first)
	}
	if term, err := s.Term(100); err != nil || term != 1 {
		t.Fatalf("term of the compaction point: %d, %v", term, err)
	}
	if _, err := s.Entries(100, 102, math.MaxUint64); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("entries below the compaction point: %v", err)
	}
	snap, _ := s.Snapshot()
	if snap.Metadata.Index != 140 || string(snap.Data) != snapFileName(1, 140) {
		t.Fatalf("snapshot %+v", snap.Metadata)
	}
}

func TestEntryTermMatchesUnmarshal(t *testing.T) {
	for _, e := range []logEntry{
		{Term: 0, Index: 0},
		{Term: 1, Index: 1, Data: []byte("x")},
		{Term: 1 << 40, Index: 1 << 50, Data: bytes.Repeat([]byte{7}, 70000)},
		{Type: 2, Term: 300, Index: 5},
	} {
		b, err := marshalEntry(&e)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := entryTerm(b); err != nil || got != e.Term {
			t.Fatalf("entryTerm of %+v: %d, %v", e.Term, got, err)
		}
	}
}

// entryTerm reads the term out of an encoded entry without decoding the
// rest; on any input it must agree with a full decode or fail.
func FuzzEntryTerm(f *testing.F) {
	for _, e := range []logEntry{{Term: 1, Index: 1, Data: []byte("x")}, {Type: 2, Term: 300, Index: 5}, {}} {
		b, err := marshalEntry(&e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		term, err := entryTerm(b)
		full, ferr := unmarshalEntry(b)
		if ferr == nil && err == nil && term != full.Term {
			t.Fatalf("entryTerm %d, a full decode says %d", term, full.Term)
		}
		if ferr == nil && err != nil {
			t.Fatalf("entryTerm failed (%v) on an entry that decodes", err)
		}
	})
}
