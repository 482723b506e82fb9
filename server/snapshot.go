package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/arbor-db/arbor/session"
	"github.com/arbor-db/arbor/tree"
)

// State machine snapshot format, version 1 (deterministic: the same state
// gives the same bytes):
//
//	magic      "ARSM"
//	version    byte = 1
//	last time  int64, big endian (the apply clock)
//	tree       uint64 length, big endian, then tree.WriteSnapshot bytes
//	sessions   uint64 length, big endian, then session Table.WriteSnapshot bytes
//	checksum   uint32 CRC-32C (Castagnoli) of everything before it
const (
	snapMagic   = "ARSM"
	snapVersion = 1
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
	b := make([]byte, 0, 4+1+8+8+tb.Len()+8+sb.Len()+4)
	b = append(b, snapMagic...)
	b = append(b, snapVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(sm.lastTime))
	b = binary.BigEndian.AppendUint64(b, uint64(tb.Len()))
	b = append(b, tb.Bytes()...)
	b = binary.BigEndian.AppendUint64(b, uint64(sb.Len()))
	b = append(b, sb.Bytes()...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	_, err := w.Write(b)
	return err
}

// Restore implements raftnode.StateMachine.
func (sm *stateMachine) Restore(index uint64, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("server: read snapshot: %w", err)
	}
	const fixed = 4 + 1 + 8 + 8 + 8 + 4
	if len(b) < fixed || string(b[:4]) != snapMagic {
		return fmt.Errorf("%w: not a state machine snapshot", errBadSnapshot)
	}
	if b[4] != snapVersion {
		return fmt.Errorf("%w: unknown version %d", errBadSnapshot, b[4])
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return fmt.Errorf("%w: checksum mismatch", errBadSnapshot)
	}
	lastTime := int64(binary.BigEndian.Uint64(body[5:]))
	rest := body[13:]
	treeBytes, rest, ok := cutLen(rest)
	if !ok {
		return fmt.Errorf("%w: truncated tree section", errBadSnapshot)
	}
	sessBytes, rest, ok := cutLen(rest)
	if !ok || len(rest) != 0 {
		return fmt.Errorf("%w: bad session section", errBadSnapshot)
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
	sm.tree, sm.sessions, sm.lastTime = t, st, lastTime
	sm.applied.Store(index)
	sm.mu.Unlock()
	sm.appliedMu.Lock()
	close(sm.appliedCh)
	sm.appliedCh = make(chan struct{})
	sm.appliedMu.Unlock()
	return nil
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
