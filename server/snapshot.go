package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"slices"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/session"
	"github.com/arbor-db/arbor/tree"
)

// State machine snapshot format, version 3 (deterministic: the same state
// gives the same bytes):
//
//	magic      "ARSM"
//	version    byte = 3
//	last time  int64, big endian (the apply clock)
//	cluster    uint64, big endian: the cluster version (absent in version 2)
//	tree       uint64 length, big endian, then tree.WriteSnapshot bytes
//	sessions   uint64 length, big endian, then session Table.WriteSnapshot bytes
//	origins    uint64 count, then (member uint64, seq uint64) pairs, big
//	           endian, in increasing member order
//	checksum   uint32 CRC-32C (Castagnoli) of everything before it
//
// Version 2 is version 3 without the cluster version field, which is then 1.
// While the cluster version is 1 the snapshot is written as version 2, so a
// member that does not know version 3 yet can still restore what an
// upgraded leader sends it during a rolling upgrade.
const (
	snapMagic   = "ARSM"
	snapVersion = 3
	maxOrigins  = 1 << 20 // far above any real member count; checked before allocating
)

// errBadSnapshot is returned by Restore for a snapshot it cannot read.
var errBadSnapshot = errors.New("server: bad snapshot")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var _ raftnode.SnapshotViewer = (*stateMachine)(nil)

// Snapshot implements raftnode.StateMachine: a view of the state now,
// written at once.
func (sm *stateMachine) Snapshot(w io.Writer) error {
	v, err := sm.SnapshotView()
	if err != nil {
		return err
	}
	_, err = v.WriteTo(w)
	return err
}

// SnapshotView takes a point-in-time view of the whole state: O(1) for the
// tree (tree.View), a copy of the session table and of the origins. Its
// WriteTo writes the snapshot of that moment and may run on any goroutine
// while entries go on being applied, so a snapshot of a large tree never
// holds up apply, ticks or heartbeats.
func (sm *stateMachine) SnapshotView() (io.WriterTo, error) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return sm.viewLocked(), nil
}

// viewLocked is SnapshotView with mu held for writing (View moves the
// tree's epoch).
func (sm *stateMachine) viewLocked() *snapView {
	return &snapView{
		tree:     sm.tree.View(),
		sessions: sm.sessions.Clone(),
		origins:  maps.Clone(sm.origins),
		lastTime: sm.lastTime,
		cv:       sm.clusterVersion.Load(),
		applied:  sm.applied.Load(),
	}
}

// snapView is the state machine at one applied index, for snapshots.
type snapView struct {
	tree     *tree.View
	sessions *session.Table
	origins  map[uint64]uint64
	lastTime int64
	cv       uint64
	applied  uint64
}

// countingWriter counts what is written to it.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// WriteTo streams the snapshot: the tree section's length comes first, so
// the tree is encoded twice (once only to count its bytes) rather than held
// in memory.
func (v *snapView) WriteTo(w io.Writer) (int64, error) {
	var treeLen countingWriter
	if err := v.tree.WriteSnapshot(&treeLen); err != nil {
		return 0, fmt.Errorf("server: tree snapshot: %w", err)
	}
	var sb bytes.Buffer
	if err := v.sessions.WriteSnapshot(&sb); err != nil {
		return 0, fmt.Errorf("server: session snapshot: %w", err)
	}
	h := crc32.New(castagnoli)
	cw := &countingWriter{}
	out := io.MultiWriter(w, h, cw)
	hdr := make([]byte, 0, 4+1+8+8+8)
	hdr = append(hdr, snapMagic...)
	if v.cv == 1 {
		hdr = append(hdr, 2)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(v.lastTime))
	} else {
		hdr = append(hdr, snapVersion)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(v.lastTime))
		hdr = binary.BigEndian.AppendUint64(hdr, v.cv)
	}
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(treeLen.n))
	if _, err := out.Write(hdr); err != nil {
		return cw.n, err
	}
	tw := &countingWriter{}
	if err := v.tree.WriteSnapshot(io.MultiWriter(out, tw)); err != nil {
		return cw.n, fmt.Errorf("server: tree snapshot: %w", err)
	}
	if tw.n != treeLen.n {
		return cw.n, fmt.Errorf("server: tree snapshot of %d bytes, counted %d", tw.n, treeLen.n)
	}
	members := slices.Sorted(maps.Keys(v.origins))
	tail := binary.BigEndian.AppendUint64(nil, uint64(len(members)))
	for _, m := range members {
		tail = binary.BigEndian.AppendUint64(tail, m)
		tail = binary.BigEndian.AppendUint64(tail, v.origins[m])
	}
	for _, part := range [][]byte{binary.BigEndian.AppendUint64(nil, uint64(sb.Len())), sb.Bytes(), tail} {
		if _, err := out.Write(part); err != nil {
			return cw.n, err
		}
	}
	n, err := w.Write(binary.BigEndian.AppendUint32(nil, h.Sum32()))
	return cw.n + int64(n), err
}

// Restore implements raftnode.StateMachine. It reads r as a stream: the
// tree is rebuilt section by section while the checksum of everything is
// computed on the way, and nothing replaces the current state unless the
// whole snapshot checks out.
func (sm *stateMachine) Restore(index uint64, r io.Reader) error {
	h := crc32.New(castagnoli)
	br := bufio.NewReaderSize(r, 64<<10)
	body := io.TeeReader(br, h)
	var fixed [4 + 1 + 8]byte
	if _, err := io.ReadFull(body, fixed[:]); err != nil || string(fixed[:4]) != snapMagic {
		return fmt.Errorf("%w: not a state machine snapshot", errBadSnapshot)
	}
	version := fixed[4]
	if version != 2 && version != snapVersion {
		return fmt.Errorf("%w: unknown version %d", errBadSnapshot, version)
	}
	lastTime := int64(binary.BigEndian.Uint64(fixed[5:]))
	cv := uint64(1)
	if version == snapVersion {
		v, err := readU64(body)
		if err != nil {
			return fmt.Errorf("%w: truncated header", errBadSnapshot)
		}
		if cv = v; cv < 2 || cv > sm.supported {
			return fmt.Errorf("%w: cluster version %d; this member runs up to %d", errBadSnapshot, cv, sm.supported)
		}
	}
	treeLen, err := readU64(body)
	if err != nil {
		return fmt.Errorf("%w: truncated tree section", errBadSnapshot)
	}
	t, err := tree.ReadSnapshot(io.LimitReader(body, int64(min(treeLen, 1<<62))))
	if err != nil {
		return fmt.Errorf("%w: %w", errBadSnapshot, err)
	}
	sessLen, err := readU64(body)
	if err != nil || sessLen > maxSessionSection {
		return fmt.Errorf("%w: bad session section", errBadSnapshot)
	}
	st, err := session.ReadSnapshot(io.LimitReader(body, int64(sessLen)))
	if err != nil {
		return fmt.Errorf("%w: %w", errBadSnapshot, err)
	}
	n, err := readU64(body)
	if err != nil || n > maxOrigins {
		return fmt.Errorf("%w: bad origins section", errBadSnapshot)
	}
	ob := make([]byte, 8+16*n)
	binary.BigEndian.PutUint64(ob, n)
	if _, err := io.ReadFull(body, ob[8:]); err != nil {
		return fmt.Errorf("%w: truncated origins section", errBadSnapshot)
	}
	origins, err := readOrigins(ob)
	if err != nil {
		return err
	}
	want := h.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(br, sum[:]); err != nil || binary.BigEndian.Uint32(sum[:]) != want {
		return fmt.Errorf("%w: checksum mismatch", errBadSnapshot)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: trailing bytes after the checksum", errBadSnapshot)
	}
	sm.mu.Lock()
	// The changes between the old state and this one have no events: the
	// history starts over here, and every watch is dropped with its
	// connection, so its client registers again since the last change it
	// saw and gets a resync. The connections end before the new index is
	// visible: a client takes any answer's zxid as proof that its watches'
	// events up to it were sent, so one answer at the restored index would
	// make it skip the changes the snapshot covers without a resync.
	lost := sm.watches.Owners()
	if bugRestoreKeepsWatches {
		lost = nil
	}
	for _, c := range lost {
		sm.watches.RemoveOwner(c)
		c.events.close()
	}
	sm.onWatchesLost(lost)
	sm.tree, sm.sessions, sm.lastTime, sm.origins = t, st, lastTime, origins
	sm.clusterVersion.Store(cv)
	sm.applied.Store(index)
	sm.history.Reset(index)
	sm.recheckWaiters()
	sm.mu.Unlock()
	sm.onRestore()
	sm.appliedMu.Lock()
	close(sm.appliedCh)
	sm.appliedCh = make(chan struct{})
	sm.appliedMu.Unlock()
	return nil
}

// maxSessionSection bounds the session section before it is read: far
// above any real table (a million sessions are about 60 MB).
const maxSessionSection = 1 << 32

func readU64(r io.Reader) (uint64, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

// readOrigins decodes the origins section, which must end the snapshot.
func readOrigins(b []byte) (map[uint64]uint64, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: truncated origins section", errBadSnapshot)
	}
	n := binary.BigEndian.Uint64(b)
	b = b[8:]
	if n > maxOrigins || uint64(len(b)) != 16*n {
		return nil, fmt.Errorf("%w: bad origins section", errBadSnapshot)
	}
	origins := make(map[uint64]uint64, n)
	var prev uint64
	for i := range n {
		m, seq := binary.BigEndian.Uint64(b[16*i:]), binary.BigEndian.Uint64(b[16*i+8:])
		if m == 0 || (i > 0 && m <= prev) {
			return nil, fmt.Errorf("%w: origins out of order", errBadSnapshot)
		}
		origins[m], prev = seq, m
	}
	return origins, nil
}
