package raftnode

// On-disk layout of DataDir/raft.db (bbolt):
//
//	bucket "entries":  key = big-endian uint64 index, value = marshalled raftpb.Entry
//	bucket "meta":     "hardstate" = raftpb.HardState, "snapshot" = raftpb.SnapshotMetadata
//	                   (of the newest snapshot file; ConfState included)
//	bucket "members":  key = big-endian uint64 member id, value = JSON memberMeta
//
// One write transaction per Ready holds snapshot metadata, entries and
// HardState; bbolt's commit fsyncs unless Config.NoSync.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketEntries = []byte("entries")
	bucketMeta    = []byte("meta")
	bucketMembers = []byte("members")
	keyHardState  = []byte("hardstate")
	keySnapshot   = []byte("snapshot")
)

// diskStorage writes raft.db; logStore (raft's Storage) reads the log from
// it. Used from the raft goroutine only (and New).
type diskStorage struct {
	db      *bolt.DB
	metrics *Metrics
	// beforeCommit, when set (tests), runs before each write transaction
	// commits; an error fails the write like a failed fsync would.
	beforeCommit func() error

	// hs is the newest HardState raft has handed over; hsDirty says it is
	// not on disk yet. A change of the commit index alone is not written
	// (and fsync'd) by itself: it goes with the next write that must be
	// durable anyway, as raft's MustSync allows. A persisted commit index
	// that lags only makes a restart replay less before the leader tells it
	// more. Raft loop goroutine only.
	hs      hardState
	hsDirty bool
	failed  bool // a write failed: nothing is written again (no fsync retry)
}

// persisted is what New loads from raft.db: everything but the entries,
// of which only the first and last index (0, 0 for none) are read. The
// log is read when raft asks for it (logStore); a gap in it is met there,
// as ErrCorrupt, and CheckDataDir looks for gaps offline.
type persisted struct {
	hardState   hardState
	snapMeta    snapshotMeta
	first, last uint64 // the entries bucket's lowest and highest index
	members     map[uint64]memberMeta
}

func (p *persisted) empty() bool {
	return raftIsEmptyHardState(p.hardState) && p.last == 0 && p.snapMeta.Index == 0
}

func openDiskStorage(dir string, noSync bool, m *Metrics) (*diskStorage, error) {
	db, err := bolt.Open(filepath.Join(dir, "raft.db"), 0o600, &bolt.Options{
		Timeout:    time.Second, // a second process on the same dir fails fast
		NoSync:     noSync,
		NoGrowSync: noSync,
		// As etcd: do not write the freelist on every commit (about 12%
		// off each commit here); bbolt rebuilds it at open by scanning the
		// file, which stays small because the log is compacted.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: open raft.db: %w", ErrStorage, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEntries, bucketMeta, bucketMembers} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: init raft.db: %w", ErrStorage, err)
	}
	return &diskStorage{db: db, metrics: m}, nil
}

// close writes a HardState still held back (a clean stop keeps the newest
// commit index), then closes the file.
func (s *diskStorage) close() error {
	var err error
	if s.hsDirty && !s.failed {
		err = s.update(func(*bolt.Tx) error { return nil })
	}
	if cerr := s.db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("%w: close raft.db: %w", ErrStorage, cerr))
	}
	return err
}

func u64key(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// load reads the persisted state but the entries (persisted).
func (s *diskStorage) load() (*persisted, error) {
	p := &persisted{members: map[uint64]memberMeta{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyHardState); v != nil {
			hs, err := unmarshalHardState(v)
			if err != nil {
				return fmt.Errorf("%w: hardstate: %w", ErrCorrupt, err)
			}
			p.hardState = hs
			s.hs = hs
		}
		if v := meta.Get(keySnapshot); v != nil {
			sm, err := unmarshalSnapMeta(v)
			if err != nil {
				return fmt.Errorf("%w: snapshot metadata: %w", ErrCorrupt, err)
			}
			p.snapMeta = sm
		}
		c := tx.Bucket(bucketEntries).Cursor()
		for _, kv := range []func() ([]byte, []byte){c.First, c.Last} {
			k, v := kv()
			if k == nil {
				break
			}
			e, err := unmarshalEntry(v)
			if err != nil {
				return fmt.Errorf("%w: entry %x: %w", ErrCorrupt, k, err)
			}
			if e.Index != binary.BigEndian.Uint64(k) {
				return fmt.Errorf("%w: entry key %x holds index %d", ErrCorrupt, k, e.Index)
			}
			if p.first == 0 {
				p.first = e.Index
			}
			p.last = e.Index
		}
		return tx.Bucket(bucketMembers).ForEach(func(_, v []byte) error {
			var m memberMeta
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("%w: member: %w", ErrCorrupt, err)
			}
			p.members[m.ID] = m
			return nil
		})
	})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: load: %w", ErrStorage, err)
	}
	return p, nil
}

// forEachEntry calls fn with every entry in index order, in one read
// transaction, checking keys, indexes and contiguity; one entry is in
// memory at a time. For CheckDataDir, on a stopped member.
func (s *diskStorage) forEachEntry(fn func(e logEntry) error) error {
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEntries).Cursor()
		var prev uint64
		for k, v := c.First(); k != nil; k, v = c.Next() {
			e, err := unmarshalEntry(v)
			if err != nil {
				return fmt.Errorf("%w: entry %x: %w", ErrCorrupt, k, err)
			}
			if e.Index != binary.BigEndian.Uint64(k) {
				return fmt.Errorf("%w: entry key %x holds index %d", ErrCorrupt, k, e.Index)
			}
			if prev != 0 && prev+1 != e.Index {
				return fmt.Errorf("%w: log gap after index %d", ErrCorrupt, prev)
			}
			prev = e.Index
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("%w: read log: %w", ErrStorage, err)
	}
	return err
}

// save durably writes one Ready's worth of state in one transaction:
// snapshot metadata first (dropping every entry, as the snapshot replaces
// the log), then entries (an entry at index i replaces every persisted entry
// at index >= i), then HardState.
func (s *diskStorage) save(hs hardState, ents []logEntry, snap *snapshotMeta) error {
	mustSync := len(ents) > 0 || snap != nil
	if !raftIsEmptyHardState(hs) {
		mustSync = mustSync || hs.Term != s.hs.Term || hs.Vote != s.hs.Vote
		s.hs, s.hsDirty = hs, true
	}
	if !mustSync {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error {
		eb := tx.Bucket(bucketEntries)
		if snap != nil {
			v, err := marshalSnapMeta(snap)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketMeta).Put(keySnapshot, v); err != nil {
				return err
			}
			if err := deleteRange(eb, 0, ^uint64(0)); err != nil {
				return err
			}
		}
		if len(ents) > 0 {
			if err := deleteRange(eb, ents[0].Index, ^uint64(0)); err != nil {
				return err
			}
			for i := range ents {
				v, err := marshalEntry(&ents[i])
				if err != nil {
					return err
				}
				if err := eb.Put(u64key(ents[i].Index), v); err != nil {
					return err
				}
			}
		}
		return nil // update adds the HardState
	})
}

// putHardState writes the newest HardState if it is not on disk yet; every
// write transaction (update) carries it, and it counts as written once the
// transaction commits.
func (s *diskStorage) putHardState(tx *bolt.Tx) error {
	if !s.hsDirty {
		return nil
	}
	v, err := marshalHardState(&s.hs)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyHardState, v)
}

// saveSnapshotMeta records a locally taken snapshot and deletes the entries
// up to compactIndex in the same transaction.
func (s *diskStorage) saveSnapshotMeta(meta snapshotMeta, compactIndex uint64) error {
	return s.update(func(tx *bolt.Tx) error {
		v, err := marshalSnapMeta(&meta)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketMeta).Put(keySnapshot, v); err != nil {
			return err
		}
		// update also writes the newest HardState, so the commit index on
		// disk is never below the snapshot's (applied, so committed) index.
		if compactIndex == 0 {
			return nil
		}
		return deleteRange(tx.Bucket(bucketEntries), 0, compactIndex)
	})
}

func (s *diskStorage) putMember(m memberMeta) error {
	return s.update(func(tx *bolt.Tx) error {
		v, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketMembers).Put(u64key(m.ID), v)
	})
}

func (s *diskStorage) update(fn func(tx *bolt.Tx) error) error {
	start := time.Now()
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if err := s.putHardState(tx); err != nil {
			return err
		}
		if s.beforeCommit != nil {
			return s.beforeCommit()
		}
		return nil
	})
	if err != nil {
		s.failed = true
		return fmt.Errorf("%w: write: %w", ErrStorage, err)
	}
	s.hsDirty = false
	if s.metrics != nil && s.metrics.FsyncSeconds != nil && !s.db.NoSync {
		s.metrics.FsyncSeconds.Observe(time.Since(start).Seconds())
	}
	return nil
}

// deleteRange deletes keys in [from, to]. Keys are collected first because
// deleting under a moving bbolt cursor can skip keys.
func deleteRange(b *bolt.Bucket, from, to uint64) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(u64key(from)); k != nil && binary.BigEndian.Uint64(k) <= to; k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
