package raftnode

// Snapshot file format (DataDir/snap/<term>-<index>.snap, hex, 16 digits each):
//
//	magic    [8]byte  "ARBSNAP1"
//	version  uint32   1
//	term     uint64
//	index    uint64
//	csLen    uint32   then csLen bytes: marshalled raftpb.ConfState
//	memLen   uint32   then memLen bytes: JSON []memberMeta
//	payLen   uint64   then payLen bytes: StateMachine.Snapshot output
//	crc      uint32   CRC-32C (Castagnoli) of every byte before it
//
// All integers are big-endian. Files are written to a temp file, fsync'd,
// renamed and the directory fsync'd. A file is verified (sizes, CRC) before
// any of it reaches the state machine.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const (
	snapMagic   = "ARBSNAP1"
	snapVersion = 1
	snapSuffix  = ".snap"
	// snapTempPattern names a snapshot file still being written
	// (os.CreateTemp); one there at start was left by a crash.
	snapTempPattern = "tmp-*.part"
	maxConfState    = 1 << 20
	maxMembersJSON  = 16 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// snapHeader is the decoded header of a snapshot file.
type snapHeader struct {
	term, index uint64
	confState   confState
	members     []memberMeta
	payloadOff  int64
	payloadLen  uint64
}

func snapFileName(term, index uint64) string {
	return fmt.Sprintf("%016x-%016x%s", term, index, snapSuffix)
}

type countingWriter struct {
	w io.Writer
	n uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

// writeSnapshotFile writes a snapshot file durably and returns its path.
func writeSnapshotFile(dir string, term, index uint64, cs confState, members []memberMeta, payload func(io.Writer) error) (string, error) {
	csb, err := marshalConfState(&cs)
	if err != nil {
		return "", err
	}
	memb, err := json.Marshal(members)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, snapTempPattern)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrStorage, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(&syncingWriter{f: f}, 256<<10)
	var hdr []byte
	hdr = append(hdr, snapMagic...)
	hdr = binary.BigEndian.AppendUint32(hdr, snapVersion)
	hdr = binary.BigEndian.AppendUint64(hdr, term)
	hdr = binary.BigEndian.AppendUint64(hdr, index)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(csb)))
	hdr = append(hdr, csb...)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(memb)))
	hdr = append(hdr, memb...)
	lenOff := int64(len(hdr))
	hdr = binary.BigEndian.AppendUint64(hdr, 0) // patched below
	if _, err := bw.Write(hdr); err != nil {
		return "", err
	}
	cw := &countingWriter{w: bw}
	if err := payload(cw); err != nil {
		if errors.Is(err, ErrStorage) {
			return "", err // the file failed, not the state machine
		}
		return "", fmt.Errorf("snapshot payload: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	var lb [8]byte
	binary.BigEndian.PutUint64(lb[:], cw.n)
	if _, err := f.WriteAt(lb[:], lenOff); err != nil {
		return "", fmt.Errorf("%w: %w", ErrStorage, err)
	}
	// CRC over the final bytes: one more sequential read of the file.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("%w: %w", ErrStorage, err)
	}
	h := crc32.New(crcTable)
	size, err := io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrStorage, err)
	}
	var cb [4]byte
	binary.BigEndian.PutUint32(cb[:], h.Sum32())
	if _, err := f.WriteAt(cb[:], size); err != nil {
		return "", fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("%w: fsync snapshot: %w", ErrStorage, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrStorage, err)
	}
	final := filepath.Join(dir, snapFileName(term, index))
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("%w: %w", ErrStorage, err)
	}
	ok = true
	return final, syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("%w: fsync dir: %w", ErrStorage, err)
	}
	return nil
}

// verifySnapshotFile checks sizes and the CRC of a snapshot file and
// returns its header. Lengths are checked against the file size before
// anything is allocated.
func verifySnapshotFile(path string) (*snapHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	hdr, err := readSnapHeader(bufio.NewReader(io.LimitReader(f, size)), size)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, filepath.Base(path), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	h := crc32.New(crcTable)
	if _, err := io.CopyN(h, f, size-4); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, filepath.Base(path), err)
	}
	var cb [4]byte
	if _, err := io.ReadFull(f, cb[:]); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, filepath.Base(path), err)
	}
	if binary.BigEndian.Uint32(cb[:]) != h.Sum32() {
		return nil, fmt.Errorf("%w: %s: checksum mismatch", ErrCorrupt, filepath.Base(path))
	}
	return hdr, nil
}

func readSnapHeader(r io.Reader, size int64) (*snapHeader, error) {
	var fixed [8 + 4 + 8 + 8 + 4]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if string(fixed[:8]) != snapMagic {
		return nil, fmt.Errorf("bad magic")
	}
	if v := binary.BigEndian.Uint32(fixed[8:12]); v != snapVersion {
		return nil, fmt.Errorf("unknown version %d", v)
	}
	h := &snapHeader{
		term:  binary.BigEndian.Uint64(fixed[12:20]),
		index: binary.BigEndian.Uint64(fixed[20:28]),
	}
	off := int64(len(fixed))
	csLen := binary.BigEndian.Uint32(fixed[28:32])
	if csLen > maxConfState || int64(csLen)+off > size {
		return nil, fmt.Errorf("conf state length %d too large", csLen)
	}
	csb := make([]byte, csLen)
	if _, err := io.ReadFull(r, csb); err != nil {
		return nil, err
	}
	off += int64(csLen)
	cs, err := unmarshalConfState(csb)
	if err != nil {
		return nil, err
	}
	h.confState = cs
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, err
	}
	off += 4
	memLen := binary.BigEndian.Uint32(lb[:])
	if memLen > maxMembersJSON || int64(memLen)+off > size {
		return nil, fmt.Errorf("members length %d too large", memLen)
	}
	memb := make([]byte, memLen)
	if _, err := io.ReadFull(r, memb); err != nil {
		return nil, err
	}
	off += int64(memLen)
	if err := json.Unmarshal(memb, &h.members); err != nil {
		return nil, err
	}
	var pb [8]byte
	if _, err := io.ReadFull(r, pb[:]); err != nil {
		return nil, err
	}
	off += 8
	h.payloadLen = binary.BigEndian.Uint64(pb[:])
	h.payloadOff = off
	if h.payloadLen > uint64(size) || off+int64(h.payloadLen)+4 != size {
		return nil, fmt.Errorf("payload length %d does not match file size %d", h.payloadLen, size)
	}
	return h, nil
}

// openSnapshotPayload verifies a snapshot file and returns a reader over
// its payload.
func openSnapshotPayload(path string) (*snapHeader, io.ReadCloser, error) {
	hdr, err := verifySnapshotFile(path)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	sr := io.NewSectionReader(f, hdr.payloadOff, int64(hdr.payloadLen))
	return hdr, struct {
		io.Reader
		io.Closer
	}{bufio.NewReaderSize(sr, 256<<10), f}, nil
}

// listSnapshots returns snapshot file names in dir, newest (highest index,
// then term) first.
func listSnapshots(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, de := range des {
		n := de.Name()
		if strings.HasSuffix(n, snapSuffix) && len(n) == 33+len(snapSuffix) {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		ti, ii := parseSnapName(names[i])
		tj, ij := parseSnapName(names[j])
		if ii != ij {
			return ii > ij
		}
		return ti > tj
	})
	return names, nil
}

func parseSnapName(n string) (term, index uint64) {
	fmt.Sscanf(n, "%016x-%016x", &term, &index)
	return term, index
}

// purgeSnapshots keeps the newest keep snapshot files. Temp files are left
// alone: one may be a snapshot being received (removeTempSnapshots clears
// those a crash left, at start).
func purgeSnapshots(dir string, keep int) error {
	names, err := listSnapshots(dir)
	if err != nil {
		return err
	}
	for i := keep; i < len(names); i++ {
		if err := os.Remove(filepath.Join(dir, names[i])); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// removeTempSnapshots removes the temp files of snapshot writes a crash
// interrupted. It runs in New, before anything can be writing one.
func removeTempSnapshots(dir string) error {
	tmps, err := filepath.Glob(filepath.Join(dir, snapTempPattern))
	if err != nil {
		return err
	}
	for _, p := range tmps {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// receiveSnapshotFile stores a streamed snapshot file for term/index,
// verifying it before it becomes visible under its final name. A broken
// stream, or a file that does not verify (ErrCorrupt), rejects only this
// snapshot: the leader sends it again. An error of this member's own file
// system wraps ErrStorage and is fatal, as every storage error is: the
// caller stops the member and the file is never written again (a failed
// fsync is not retried). beforeSync, when set (tests), runs before the
// fsync; its error fails the write as a failed fsync would.
func receiveSnapshotFile(dir string, term, index uint64, r io.Reader, beforeSync func() error) error {
	f, err := os.CreateTemp(dir, snapTempPattern)
	if err != nil {
		return fmt.Errorf("%w: create received snapshot: %w", ErrStorage, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := io.Copy(&syncingWriter{f: f}, r); err != nil {
		if errors.Is(err, ErrStorage) {
			return err
		}
		return fmt.Errorf("raftnode: receive snapshot stream: %w", err)
	}
	if beforeSync != nil {
		if err := beforeSync(); err != nil {
			return fmt.Errorf("%w: fsync received snapshot: %w", ErrStorage, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%w: fsync received snapshot: %w", ErrStorage, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%w: close received snapshot: %w", ErrStorage, err)
	}
	hdr, err := verifySnapshotFile(tmp)
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: read back received snapshot: %w", ErrStorage, err)
	}
	if hdr.term != term || hdr.index != index {
		return fmt.Errorf("%w: received snapshot is %d/%d, message says %d/%d", ErrCorrupt, hdr.term, hdr.index, term, index)
	}
	if err := os.Rename(tmp, filepath.Join(dir, snapFileName(term, index))); err != nil {
		return fmt.Errorf("%w: rename received snapshot: %w", ErrStorage, err)
	}
	ok = true
	return syncDir(dir)
}
