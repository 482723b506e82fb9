package raftnode

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckDataDir(t *testing.T) {
	dir := t.TempDir()
	s, err := openDiskStorage(dir, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.save(hardState{Term: 1, Vote: 1, Commit: 10}, ents(1, 1, 10), nil); err != nil {
		t.Fatal(err)
	}
	snapDir := filepath.Join(dir, "snap")
	if err := os.MkdirAll(snapDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path, err := writeSnapshotFile(snapDir, 1, 8, confState{Voters: []uint64{1}}, nil, func(w io.Writer) error {
		_, err := w.Write([]byte("state"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.saveSnapshotMeta(snapshotMeta{Term: 1, Index: 8}, 5); err != nil {
		t.Fatal(err)
	}
	s.close()
	if err := CheckDataDir(dir); err != nil {
		t.Fatalf("healthy dir: %v", err)
	}

	// A flipped byte in the snapshot file the log relies on.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckDataDir(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt snapshot: %v", err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	// A commit index beyond the log.
	s, err = openDiskStorage(dir, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.save(hardState{Term: 1, Vote: 1, Commit: 50}, nil, nil); err != nil {
		t.Fatal(err)
	}
	s.close()
	if err := CheckDataDir(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("commit beyond the log: %v", err)
	}

	// A flipped byte in an entry of a segment that was synced whole before
	// the next one started: corruption, not a crash's torn tail.
	s, err = openDiskStorage(dir, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.save(hardState{Term: 1, Vote: 1, Commit: 10}, nil, nil); err != nil {
		t.Fatal(err)
	}
	s.close()
	seg := filepath.Join(dir, "wal", "0000000000000001.wal")
	b, err = os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 1
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckDataDir(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("corrupt entry in the log: %v", err)
	}
}
