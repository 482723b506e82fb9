package tree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"slices"
	"testing"
)

// sampleTree has every kind of node the snapshot must carry.
func sampleTree(t testing.TB) *Tree {
	tr := New()
	ops := []Op{
		{Kind: OpCreate, Path: "/a", Data: []byte("alpha")},
		{Kind: OpCreate, Path: "/a/b", Data: []byte{0, 1, 2}},
		{Kind: OpCreate, Path: "/a/e", Owner: 77},
		{Kind: OpCreate, Path: "/c", Container: true},
		{Kind: OpCreate, Path: "/t", TTLMs: 60000},
		{Kind: OpCreate, Path: "/a/s-", Sequential: true},
		{Kind: OpSet, Path: "/a", Data: []byte("beta"), Version: -1},
		{Kind: OpCreate, Path: "/arbor/x", System: true, Data: []byte("sys")},
		{Kind: OpCreate, Path: "/ü", Data: []byte("utf")},
	}
	for i, op := range ops {
		if _, _, err := tr.Apply(uint64(i+1), -int64(i), op); err != nil {
			t.Fatalf("%+v: %v", op, err)
		}
	}
	return tr
}

func TestSnapshotRoundTrip(t *testing.T) {
	for name, tr := range map[string]*Tree{"new": New(), "sample": sampleTree(t)} {
		t.Run(name, func(t *testing.T) {
			b := snapshotBytes(t, tr)
			if again := snapshotBytes(t, tr); !bytes.Equal(b, again) {
				t.Fatalf("two snapshots of one tree differ")
			}
			got, err := ReadSnapshot(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("ReadSnapshot: %v", err)
			}
			if b2 := snapshotBytes(t, got); !bytes.Equal(b, b2) {
				t.Fatalf("round trip changed the bytes")
			}
			if got.NumNodes() != tr.NumNodes() {
				t.Errorf("NumNodes %d, want %d", got.NumNodes(), tr.NumNodes())
			}
			if !slices.Equal(got.Ephemerals(77), tr.Ephemerals(77)) || !slices.Equal(got.Owners(), tr.Owners()) {
				t.Errorf("ephemeral index not rebuilt: %v", got.Ephemerals(77))
			}
			if !slices.Equal(got.Containers(), tr.Containers()) || !slices.Equal(got.TTLNodes(), tr.TTLNodes()) {
				t.Errorf("container/TTL index not rebuilt: %v %v", got.Containers(), got.TTLNodes())
			}
			data, st, _ := got.Get("/a")
			wantData, wantSt, _ := tr.Get("/a")
			if !bytes.Equal(data, wantData) || st != wantSt {
				t.Errorf("/a = %q %+v, want %q %+v", data, st, wantData, wantSt)
			}
		})
	}
}

func TestSnapshotRestoredTreeWorks(t *testing.T) {
	tr, err := ReadSnapshot(bytes.NewReader(snapshotBytes(t, sampleTree(t))))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := tr.Apply(100, 0, Op{Kind: OpCreate, Path: "/a/s-", Sequential: true})
	if err != nil || r.Path != "/a/s-0000000003" {
		t.Errorf("sequential after restore: %q, %v", r.Path, err)
	}
	if ev := tr.DeleteEphemerals(101, 0, 77); len(ev) != 2 || ev[0].Path != "/a/e" {
		t.Errorf("DeleteEphemerals after restore: %+v", ev)
	}
}

func TestSnapshotCorruption(t *testing.T) {
	b := snapshotBytes(t, sampleTree(t))
	for i := range b {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			c := bytes.Clone(b)
			c[i] ^= mask
			if _, err := ReadSnapshot(bytes.NewReader(c)); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("byte %d ^ %#x: err = %v, want ErrBadSnapshot", i, mask, err)
			}
		}
	}
	for n := range len(b) {
		if _, err := ReadSnapshot(bytes.NewReader(b[:n])); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("truncated to %d bytes: err = %v, want ErrBadSnapshot", n, err)
		}
	}
	if _, err := ReadSnapshot(bytes.NewReader(append(bytes.Clone(b), 0))); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("trailing byte: err = %v", err)
	}
}

// encodeRaw builds a snapshot with a valid checksum around body, so that
// the structural checks, not the checksum, must reject it.
func encodeRaw(body []byte) []byte {
	b := append([]byte(snapMagic), body...)
	return appendCRC(b)
}

func TestSnapshotStructureRejected(t *testing.T) {
	// node encodes one node with zero stats and the given name, data length
	// and child count.
	node := func(name string, owner byte, flags byte, dataLen []byte, children byte) []byte {
		b := append([]byte{byte(len(name))}, name...)
		b = append(b, 0, 0, 0, 0, 0, 0, 0, owner, flags)
		b = append(b, dataLen...)
		return append(b, children)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := map[string][]byte{
		"unknown version":    cat([]byte{2}, node("", 0, 0, []byte{0}, 0)),
		"named root":         cat([]byte{1}, node("x", 0, 0, []byte{0}, 0)),
		"ephemeral root":     cat([]byte{1}, node("", 5, 0, []byte{0}, 0)),
		"empty child name":   cat([]byte{1}, node("", 0, 0, []byte{0}, 1), node("", 0, 0, []byte{0}, 0)),
		"slash in name":      cat([]byte{1}, node("", 0, 0, []byte{0}, 1), node("a/b", 0, 0, []byte{0}, 0)),
		"dot name":           cat([]byte{1}, node("", 0, 0, []byte{0}, 1), node(".", 0, 0, []byte{0}, 0)),
		"control in name":    cat([]byte{1}, node("", 0, 0, []byte{0}, 1), node("a\n", 0, 0, []byte{0}, 0)),
		"unsorted children":  cat([]byte{1}, node("", 0, 0, []byte{0}, 2), node("b", 0, 0, []byte{0}, 0), node("a", 0, 0, []byte{0}, 0)),
		"duplicate children": cat([]byte{1}, node("", 0, 0, []byte{0}, 2), node("a", 0, 0, []byte{0}, 0), node("a", 0, 0, []byte{0}, 0)),
		"ephemeral parent":   cat([]byte{1}, node("", 0, 0, []byte{0}, 1), node("e", 9, 0, []byte{0}, 1), node("c", 0, 0, []byte{0}, 0)),
		"unknown flag":       cat([]byte{1}, node("", 0, 4, []byte{0}, 0)),
		"huge data length":   cat([]byte{1}, node("", 0, 0, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 0)),
		"data over MaxData":  cat([]byte{1}, node("", 0, 0, []byte{0x81, 0x80, 0x40}, 0)),
		"missing children":   cat([]byte{1}, node("", 0, 0, []byte{0}, 3), node("a", 0, 0, []byte{0}, 0)),
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ReadSnapshot(bytes.NewReader(encodeRaw(body))); !errors.Is(err, ErrBadSnapshot) {
				t.Errorf("err = %v, want ErrBadSnapshot", err)
			}
		})
	}
	// The builder itself must produce acceptable snapshots, or the cases above prove nothing.
	ok := cat([]byte{1}, node("", 0, 0, []byte{0}, 1), node("arbor", 0, 0, []byte{0}, 0))
	if _, err := ReadSnapshot(bytes.NewReader(encodeRaw(ok))); err != nil {
		t.Errorf("valid hand-built snapshot rejected: %v", err)
	}
}

// errWriter fails after n bytes.
type errWriter struct{ n int }

func (w *errWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return w.n, io.ErrShortWrite
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteSnapshotError(t *testing.T) {
	size := len(snapshotBytes(t, sampleTree(t)))
	for _, n := range []int{0, 10, size - 1} {
		if err := sampleTree(t).WriteSnapshot(&errWriter{n: n}); err == nil {
			t.Errorf("write failing after %d bytes: no error", n)
		}
	}
}

// appendCRC appends the CRC-32C trailer of b to b.
func appendCRC(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}
