package raftnode

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A syncing writer writes every byte through its fsyncs, and its write
// errors are storage errors.
func TestSyncingWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := &syncingWriter{f: f}
	want := bytes.Repeat([]byte("0123456789abcdef"), (2*snapSyncEvery+12345)/16)
	for rest := want; len(rest) > 0; {
		k := min(len(rest), 256<<10+7) // not a divisor of snapSyncEvery
		if _, err := w.Write(rest[:k]); err != nil {
			t.Fatal(err)
		}
		rest = rest[k:]
	}
	f.Close()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes (%v), want the %d written", len(got), err, len(want))
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrStorage) {
		t.Fatalf("write to a closed file: %v, want a storage error", err)
	}
}
