package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// The segment being written is preallocated ahead of its records; its zero
// tail is the end of the log, not a torn write, and a reopen replays the
// same log.
func TestPreallocatedTailIsTheEnd(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, Options{})
	want := entries(1, 1, 50)
	if err := w.Save([]byte("hs"), nil, false, want); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, segmentName(1))
	if got := fileSize(t, seg); got < preallocChunk {
		t.Skipf("segment is %d bytes: this filesystem does not preallocate", got)
	}
	w.Close()

	ro, st, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.TornBytes != 0 || st.Last != 50 {
		t.Fatalf("read-only: %+v", st)
	}
	sameEntries(t, readAll(t, ro, st), want)
	ro.Close()

	w2, st := open(t, dir, Options{})
	if st.TornBytes != 0 || st.Last != 50 {
		t.Fatalf("reopened: %+v", st)
	}
	sameEntries(t, readAll(t, w2, st), want)
	// The reopen cut the old segment back to its records: only the newest
	// segment has a zero tail.
	if got := fileSize(t, seg); got >= preallocChunk {
		t.Fatalf("old segment still %d bytes", got)
	}
}

// A torn Save in a preallocated segment: its bytes, not the zeros after
// them, are what a read-only open reports, and a writable open drops them.
func TestTornTailInPreallocatedSegment(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, Options{})
	if err := w.Save([]byte("hs"), nil, false, entries(1, 1, 3)); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, segmentName(1))
	end := w.segs[0].size
	w.Close()
	if fileSize(t, seg) <= end {
		t.Skip("this filesystem does not preallocate")
	}
	// A Save of which only the second page made it: zeros, then bytes.
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := appendRecord(nil, kindEntry, 4, 1, bytes.Repeat([]byte{'x'}, 5000))
	if _, err := f.WriteAt(torn[4096:], end+4096); err != nil {
		t.Fatal(err)
	}
	f.Close()

	ro, st, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	ro.Close()
	if wantTorn := int64(len(torn)); st.Last != 3 || st.TornBytes != wantTorn {
		t.Fatalf("read-only: %+v, want 3 entries and %d torn bytes", st, wantTorn)
	}
	w2, st := open(t, dir, Options{})
	if st.Last != 3 || st.TornBytes != 0 {
		t.Fatalf("after the crash: %+v", st)
	}
	if err := w2.Save(nil, nil, false, entries(1, 4, 4)); err != nil {
		t.Fatal(err)
	}
	w2.Close()
	w3, st := open(t, dir, Options{})
	if st.Last != 4 {
		t.Fatalf("after appending: %+v", st)
	}
	sameEntries(t, readAll(t, w3, st), entries(1, 1, 4))
}

// A segment that fills up is allocated no further than SegmentBytes, so a
// closed segment has no zero tail: a bad record in it stays corruption.
func TestFullSegmentHasNoZeroTail(t *testing.T) {
	dir := t.TempDir()
	const segBytes = 64 << 10
	w, _ := open(t, dir, Options{SegmentBytes: segBytes})
	big := bytes.Repeat([]byte{'v'}, 1000)
	for i := uint64(1); w.Segments() < 3; i++ {
		if err := w.Save(nil, nil, false, []Entry{{Index: i, Term: 1, Data: big}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, seq := range []uint64{1, 2} {
		seg := filepath.Join(dir, segmentName(seq))
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < segBytes || bytes.HasSuffix(b, make([]byte, 8)) {
			t.Fatalf("closed segment %d: %d bytes, zero tail %v", seq, len(b), bytes.HasSuffix(b, make([]byte, 8)))
		}
	}
}
