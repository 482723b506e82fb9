package raftnode

import (
	"fmt"
	"slices"
	"sync/atomic"

	"go.etcd.io/raft/v3"
)

// logStore is raft's Storage: the log lives in the write-ahead log
// (package wal), and only its newest entries, up to Config.MaxLogCacheBytes,
// are also kept in memory. raft.MemoryStorage held every entry since the
// last compaction (up to about 105,000 of them, whatever their size: 100 GB
// of 1 MiB values) and had to be loaded whole at start.
//
// Why a cache of the tail and the segment files for the rest, rather than
// a MemoryStorage trimmed to the tail: raft reads the log in three places,
// and all three are served by the tail or are rare and sequential. A
// leader's appends to up-to-date followers, and the commit and apply of
// new entries, read the newest entries (and raft itself holds the
// unpersisted ones); a lagging follower, and the replay of committed
// entries at start, read older entries in order, in batches bounded by
// MaxSizePerMsg and MaxCommittedSizePerReady, which the WAL serves with
// one read per run of up to 1 MiB. MemoryStorage cannot leave a hole below
// its tail (its first index is where it starts), so trimming it would tell
// raft the older entries were compacted and make it send snapshots
// instead.
//
// Every entry raft may read is on disk before it is in the cache: the
// Ready loop writes the WAL first, then calls append. Used by the raft
// goroutine only (and New, before Run); the counters are atomic for
// Status.
type logStore struct {
	disk logReader

	hs   hardState
	snap snapshotMeta // newest snapshot; Snapshot's Data names its file
	// A member was added at staleBefore, and a member refuses a snapshot
	// whose ConfState lacks it: until a snapshot at or after that index
	// exists, Snapshot answers "temporarily unavailable" (raft asks again
	// later) rather than have raft stream a useless file again and again.
	staleBefore uint64 // snapshots below this index are stale

	// The log raft may read is (prevIndex, last]; prevTerm is the term of
	// prevIndex, the compaction point, which raft needs to match appends.
	prevIndex, prevTerm uint64
	last                uint64

	// cache holds the entries (last-len(cache), last], contiguous, in an
	// array of its own: slices of it handed to raft are never written
	// again (appends past their end are cut off by the full slice
	// expression, truncation clips, eviction copies).
	cache      []logEntry
	cacheBytes uint64 // sum of the cached entries' encoded sizes
	limit      uint64

	cachePub, cachePeak, diskReads atomic.Uint64
}

var _ raft.Storage = (*logStore)(nil)

// logReader reads the log on disk (diskStorage).
type logReader interface {
	term(i uint64) (uint64, error)
	readEntries(lo, hi uint64, fn func(logEntry) (bool, error)) error
}

func newLogStore(disk logReader, limit uint64) *logStore {
	return &logStore{disk: disk, limit: limit}
}

// reset makes (prevIndex, last] the log, with prevIndex the index of the
// snapshot snap (zero for none) and nothing cached.
func (s *logStore) reset(snap snapshotMeta, last uint64) {
	s.snap = snap
	s.prevIndex, s.prevTerm = snap.Index, snap.Term
	s.last = max(last, snap.Index)
	s.setCache(nil)
}

func (s *logStore) setCache(c []logEntry) {
	s.cache = c
	s.cacheBytes = 0
	for i := range c {
		s.cacheBytes += uint64(c[i].Size())
	}
	s.cachePub.Store(s.cacheBytes)
}

func (s *logStore) cacheFirst() uint64 { return s.last + 1 - uint64(len(s.cache)) }

// InitialState implements raft.Storage.
func (s *logStore) InitialState() (hardState, confState, error) {
	return s.hs, s.snap.ConfState, nil
}

// FirstIndex implements raft.Storage.
func (s *logStore) FirstIndex() (uint64, error) { return s.prevIndex + 1, nil }

// LastIndex implements raft.Storage.
func (s *logStore) LastIndex() (uint64, error) { return s.last, nil }

// Snapshot implements raft.Storage.
func (s *logStore) Snapshot() (snapshot, error) {
	if s.snap.Index == 0 {
		return snapshot{}, nil
	}
	if s.snap.Index < s.staleBefore {
		return snapshot{}, raft.ErrSnapshotTemporarilyUnavailable
	}
	return fileSnapshot(s.snap.Term, s.snap.Index, s.snap.ConfState), nil
}

// Term implements raft.Storage.
func (s *logStore) Term(i uint64) (uint64, error) {
	switch {
	case i == s.prevIndex:
		return s.prevTerm, nil
	case i < s.prevIndex:
		return 0, raft.ErrCompacted
	case i > s.last:
		return 0, raft.ErrUnavailable
	case i >= s.cacheFirst():
		return s.cache[i-s.cacheFirst()].Term, nil
	}
	s.diskReads.Add(1)
	return s.disk.term(i)
}

// Entries implements raft.Storage: the entries [lo, hi), at least one and
// otherwise at most maxSize bytes of them, read from the WAL below the
// cache. raft treats them as read-only.
func (s *logStore) Entries(lo, hi, maxSize uint64) ([]logEntry, error) {
	if lo <= s.prevIndex {
		return nil, raft.ErrCompacted
	}
	if hi > s.last+1 {
		return nil, fmt.Errorf("%w: entries [%d, %d) beyond the last index %d", ErrStorage, lo, hi, s.last)
	}
	if lo >= hi {
		return nil, nil
	}
	cf := s.cacheFirst()
	if lo >= cf {
		ents := limitEntries(s.cache[lo-cf:hi-cf], 0, maxSize)
		return ents[:len(ents):len(ents)], nil
	}
	ents, size, err := s.readEntries(lo, min(hi, cf), maxSize)
	if err != nil {
		return nil, err
	}
	if hi <= cf || uint64(len(ents)) < min(hi, cf)-lo {
		return ents, nil
	}
	return append(ents, limitEntries(s.cache[:hi-cf], size, maxSize)...), nil
}

// readEntries reads [lo, hi) from the log on disk, stopping before
// maxSize bytes (but with at least one entry).
func (s *logStore) readEntries(lo, hi, maxSize uint64) ([]logEntry, uint64, error) {
	s.diskReads.Add(1)
	var ents []logEntry
	var size uint64
	err := s.disk.readEntries(lo, hi, func(e logEntry) (bool, error) {
		if len(ents) > 0 && size+uint64(e.Size()) > maxSize {
			return false, nil
		}
		size += uint64(e.Size())
		ents = append(ents, e)
		return true, nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read log [%d, %d): %w", lo, hi, err)
	}
	if len(ents) == 0 && lo < hi {
		return nil, 0, fmt.Errorf("%w: entry %d missing from the log", ErrCorrupt, lo)
	}
	return ents, size, nil
}

// limitEntries returns the longest prefix of ents that keeps have plus its
// size within maxSize, and at least one entry when have is zero (raft's
// rule: a single entry over the limit still goes).
func limitEntries(ents []logEntry, have, maxSize uint64) []logEntry {
	for i := range ents {
		have += uint64(ents[i].Size())
		if have > maxSize && (i > 0 || have > uint64(ents[i].Size())) {
			return ents[:i]
		}
	}
	return ents
}

// setHardState records what the Ready loop made durable.
func (s *logStore) setHardState(hs hardState) { s.hs = hs }

// append adds entries the Ready loop has made durable; an entry at index i
// replaces every entry at index >= i.
func (s *logStore) append(ents []logEntry) error {
	for len(ents) > 0 && ents[0].Index <= s.prevIndex {
		ents = ents[1:] // compacted: raft can only be re-sending them
	}
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].Index
	if first > s.last+1 {
		return fmt.Errorf("%w: append at %d leaves a gap after %d", ErrStorage, first, s.last)
	}
	if cf := s.cacheFirst(); first <= cf {
		s.setCache(nil)
	} else if first <= s.last {
		// Clip: the next append must not write over entries raft may
		// still hold a slice of.
		s.setCache(slices.Clip(s.cache[:first-cf]))
	}
	s.last = first - 1 // the cache ends here now
	if len(s.cache) == 0 {
		// The cache restarts at first (older entries stay on disk).
		s.cache = nil
	}
	s.cache = append(s.cache, ents...)
	for i := range ents {
		s.cacheBytes += uint64(ents[i].Size())
	}
	s.last = ents[len(ents)-1].Index
	s.evict()
	return nil
}

// evict keeps the cache within its limit. Once over it, the oldest
// entries go until a quarter of the limit is free (so that copying the
// rest into a new array, which lets the old one and the evicted entries'
// data be collected, happens once per limit/4 bytes appended at most).
func (s *logStore) evict() {
	if s.cacheBytes > s.limit {
		target := s.limit - s.limit/4
		i := 0
		for ; i < len(s.cache) && s.cacheBytes > target; i++ {
			s.cacheBytes -= uint64(s.cache[i].Size())
		}
		s.cache = slices.Clone(s.cache[i:])
	}
	s.cachePub.Store(s.cacheBytes)
	if s.cacheBytes > s.cachePeak.Load() {
		s.cachePeak.Store(s.cacheBytes)
	}
}

// applySnapshot makes a snapshot received from the leader the start of the
// log; the Ready loop's WAL save has already reset the log on disk.
func (s *logStore) applySnapshot(meta snapshotMeta) error {
	if meta.Index <= s.snap.Index {
		return raft.ErrSnapOutOfDate
	}
	s.reset(meta, meta.Index)
	return nil
}

// createSnapshot records a local snapshot at index, whose file is durable.
func (s *logStore) createSnapshot(index uint64, cs confState) (snapshotMeta, error) {
	if index <= s.snap.Index {
		return snapshotMeta{}, raft.ErrSnapOutOfDate
	}
	if index > s.last {
		return snapshotMeta{}, fmt.Errorf("%w: snapshot %d beyond the last index %d", ErrStorage, index, s.last)
	}
	term, err := s.Term(index)
	if err != nil {
		return snapshotMeta{}, err
	}
	s.snap = snapshotMeta{Index: index, Term: term, ConfState: cs}
	return s.snap, nil
}

// compact makes index the compaction point. It must run before the WAL
// drops the entries (it may read index's term from there).
func (s *logStore) compact(index uint64) error {
	if index <= s.prevIndex {
		return raft.ErrCompacted
	}
	if index > s.last {
		return fmt.Errorf("%w: compact %d beyond the last index %d", ErrStorage, index, s.last)
	}
	term, err := s.Term(index)
	if err != nil {
		return err
	}
	s.prevIndex, s.prevTerm = index, term
	if cf := s.cacheFirst(); index >= cf {
		s.setCache(slices.Clone(s.cache[index+1-cf:]))
	}
	return nil
}
