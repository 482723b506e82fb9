package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"slices"

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

// Snapshot implements raftnode.StateMachine.
func (sm *stateMachine) Snapshot(w io.Writer) error {
	sm.mu.RLock()
	defer sm.mu.RUnlock()
	return sm.snapshotLocked(w)
}

// snapshotLocked writes the snapshot; called with mu held.
func (sm *stateMachine) snapshotLocked(w io.Writer) error {
	var tb, sb bytes.Buffer
	if err := sm.tree.WriteSnapshot(&tb); err != nil {
		return fmt.Errorf("server: tree snapshot: %w", err)
	}
	if err := sm.sessions.WriteSnapshot(&sb); err != nil {
		return fmt.Errorf("server: session snapshot: %w", err)
	}
	// Stream the sections through the checksum rather than assembling one
	// more copy of the whole state.
	h := crc32.New(castagnoli)
	out := io.MultiWriter(w, h)
	hdr := make([]byte, 0, 4+1+8+8+8)
	hdr = append(hdr, snapMagic...)
	cv := sm.clusterVersion.Load()
	if cv == 1 {
		hdr = append(hdr, 2)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(sm.lastTime))
	} else {
		hdr = append(hdr, snapVersion)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(sm.lastTime))
		hdr = binary.BigEndian.AppendUint64(hdr, cv)
	}
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(tb.Len()))
	mid := binary.BigEndian.AppendUint64(nil, uint64(sb.Len()))
	members := slices.Sorted(maps.Keys(sm.origins))
	tail := binary.BigEndian.AppendUint64(nil, uint64(len(members)))
	for _, m := range members {
		tail = binary.BigEndian.AppendUint64(tail, m)
		tail = binary.BigEndian.AppendUint64(tail, sm.origins[m])
	}
	for _, part := range [][]byte{hdr, tb.Bytes(), mid, sb.Bytes(), tail} {
		if _, err := out.Write(part); err != nil {
			return err
		}
	}
	_, err := w.Write(binary.BigEndian.AppendUint32(nil, h.Sum32()))
	return err
}

// Restore implements raftnode.StateMachine.
func (sm *stateMachine) Restore(index uint64, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("server: read snapshot: %w", err)
	}
	const fixed = 4 + 1 + 8 + 8 + 8 + 8 + 4
	if len(b) < fixed || string(b[:4]) != snapMagic {
		return fmt.Errorf("%w: not a state machine snapshot", errBadSnapshot)
	}
	if b[4] != 2 && b[4] != snapVersion {
		return fmt.Errorf("%w: unknown version %d", errBadSnapshot, b[4])
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return fmt.Errorf("%w: checksum mismatch", errBadSnapshot)
	}
	lastTime := int64(binary.BigEndian.Uint64(body[5:]))
	rest := body[13:]
	cv := uint64(1)
	if b[4] == snapVersion {
		if len(rest) < 8 {
			return fmt.Errorf("%w: truncated header", errBadSnapshot)
		}
		cv, rest = binary.BigEndian.Uint64(rest), rest[8:]
		if cv < 2 || cv > sm.supported {
			return fmt.Errorf("%w: cluster version %d; this member runs up to %d", errBadSnapshot, cv, sm.supported)
		}
	}
	treeBytes, rest, ok := cutLen(rest)
	if !ok {
		return fmt.Errorf("%w: truncated tree section", errBadSnapshot)
	}
	sessBytes, rest, ok := cutLen(rest)
	if !ok {
		return fmt.Errorf("%w: bad session section", errBadSnapshot)
	}
	origins, err := readOrigins(rest)
	if err != nil {
		return err
	}
	t, err := tree.ReadSnapshot(bytes.NewReader(treeBytes))
	if err != nil {
		return fmt.Errorf("%w: %w", errBadSnapshot, err)
	}
	st, err := session.ReadSnapshot(bytes.NewReader(sessBytes))
	if err != nil {
		return fmt.Errorf("%w: %w", errBadSnapshot, err)
	}
	sm.mu.Lock()
	sm.tree, sm.sessions, sm.lastTime, sm.origins = t, st, lastTime, origins
	sm.clusterVersion.Store(cv)
	sm.applied.Store(index)
	// The changes between the old state and this one have no events: the
	// history starts over here, and every watch is dropped with its
	// connection, so its client registers again since the last change it
	// saw and gets a resync.
	sm.history.Reset(index)
	lost := sm.watches.Owners()
	for _, c := range lost {
		sm.watches.RemoveOwner(c)
		c.events.close()
	}
	sm.mu.Unlock()
	sm.onRestore()
	if len(lost) > 0 {
		sm.onWatchesLost(lost)
	}
	sm.appliedMu.Lock()
	close(sm.appliedCh)
	sm.appliedCh = make(chan struct{})
	sm.appliedMu.Unlock()
	return nil
}

// stateDigest returns the applied index, the SHA-256 of the snapshot at
// exactly that index, and the node and session counts, under one read lock.
func (sm *stateMachine) stateDigest() (applied uint64, sum [sha256.Size]byte, nodes, sessions int, err error) {
	sm.read(func(v stateView) {
		applied, nodes, sessions = v.zxid(), v.tree().NumNodes(), v.numSessions()
		sum, err = v.digest()
	})
	return applied, sum, nodes, sessions, err
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

// cutLen splits a uint64-length-prefixed section off b.
func cutLen(b []byte) (section, rest []byte, ok bool) {
	if len(b) < 8 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint64(b)
	b = b[8:]
	if n > uint64(len(b)) {
		return nil, nil, false
	}
	return b[:n], b[n:], true
}
