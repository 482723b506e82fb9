package raftnode

// On-disk layout of DataDir:
//
//	wal/<seq>.wal  the raft log: entries, the newest HardState and snapshot
//	               metadata (package wal: one append and fdatasync per Ready)
//	raft.db        bbolt; bucket "members": key = big-endian uint64 member
//	               id, value = JSON memberMeta. Buckets "entries" and "meta"
//	               held the log before the WAL; a data dir written by an
//	               older version is converted at open (convertLegacyLog)
//	               and they are left empty.
//
// One WAL Save per Ready holds snapshot metadata, HardState and entries,
// fdatasync'd unless Config.NoSync.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/arbor-db/arbor/raftnode/wal"
)

var (
	bucketEntries = []byte("entries")
	bucketMeta    = []byte("meta")
	bucketMembers = []byte("members")
	keyHardState  = []byte("hardstate")
	keySnapshot   = []byte("snapshot")
)

// diskStorage writes the WAL and raft.db; logStore (raft's Storage) reads
// the log through it. Used from the raft goroutine only (and New).
type diskStorage struct {
	db      *bolt.DB
	wal     *wal.WAL
	metrics *Metrics
	// beforeCommit, when set (tests), runs before each WAL sync and bbolt
	// commit; an error fails the write like a failed fsync would.
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

// persisted is what New loads: everything but the entries, of which only
// the first and last index (0, 0 for none) are kept. The log is read when
// raft asks for it (logStore).
type persisted struct {
	hardState   hardState
	snapMeta    snapshotMeta
	first, last uint64 // the entries bucket's lowest and highest index
	members     map[uint64]memberMeta
}

func (p *persisted) empty() bool {
	return raftIsEmptyHardState(p.hardState) && p.last == 0 && p.snapMeta.Index == 0
}

func openDiskStorage(dir string, noSync bool, m *Metrics, log *slog.Logger) (*diskStorage, error) {
	return openDiskStorageSegments(dir, noSync, m, log, 0)
}

// openDiskStorageSegments is openDiskStorage with log segments of
// segmentBytes (0: the WAL's default).
func openDiskStorageSegments(dir string, noSync bool, m *Metrics, log *slog.Logger, segmentBytes int64) (*diskStorage, error) {
	db, err := bolt.Open(filepath.Join(dir, "raft.db"), 0o600, &bolt.Options{
		Timeout:    time.Second, // a second process on the same dir fails fast
		NoSync:     noSync,
		NoGrowSync: noSync,
		// As etcd: do not write the freelist on every commit; bbolt
		// rebuilds it at open by scanning the file, which stays small.
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
	s := &diskStorage{db: db, metrics: m}
	walDir := filepath.Join(dir, "wal")
	if err := convertLegacyLog(db, walDir, log); err != nil {
		db.Close()
		return nil, err
	}
	opts := wal.Options{
		SegmentBytes: segmentBytes,
		NoSync:       noSync,
		Logger:       log,
		BeforeSync: func() error {
			if s.beforeCommit != nil {
				return s.beforeCommit()
			}
			return nil
		},
	}
	if m != nil && m.FsyncSeconds != nil && !noSync {
		opts.OnSync = func(d time.Duration) { m.FsyncSeconds.Observe(d.Seconds()) }
	}
	w, _, err := wal.Open(walDir, opts)
	if err != nil {
		db.Close()
		return nil, walError("open the log", err)
	}
	s.wal = w
	return s, nil
}

// walError classifies an error of package wal.
func walError(what string, err error) error {
	if errors.Is(err, wal.ErrCorrupt) {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrStorage, what, err)
}

// convertLegacyLog moves a log kept in raft.db (before the WAL) into a new
// WAL, whole or not at all (wal.Create), then empties raft.db's entries and
// meta buckets. A crash in between leaves the WAL and stale buckets: the
// WAL wins and the buckets are emptied on the next open.
func convertLegacyLog(db *bolt.DB, walDir string, log *slog.Logger) error {
	exists, err := wal.Exists(walDir)
	if err != nil {
		return walError("look for the log", err)
	}
	if !exists {
		legacy := &diskStorage{db: db}
		p, err := legacy.loadLegacy()
		if err != nil {
			return err
		}
		if !p.empty() {
			hs, snap, err := encodeState(p.hardState, p.snapMeta)
			if err != nil {
				return err
			}
			err = wal.Create(walDir, hs, snap, func(yield func(wal.Entry) error) error {
				return legacy.forEachLegacyEntry(func(e logEntry) error {
					data, err := marshalEntry(&e)
					if err != nil {
						return err
					}
					return yield(wal.Entry{Index: e.Index, Term: e.Term, Data: data})
				})
			})
			if err != nil {
				return walError("convert the log in raft.db", err)
			}
			if log != nil {
				log.Info("moved the raft log from raft.db to the write-ahead log", "entries", p.last-p.first+1, "first", p.first, "last", p.last)
			}
		}
	}
	var stale bool
	err = db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketEntries).Cursor().First()
		meta := tx.Bucket(bucketMeta)
		stale = k != nil || meta.Get(keyHardState) != nil || meta.Get(keySnapshot) != nil
		return nil
	})
	if err != nil || !stale {
		return loadError(err) // nil when there is nothing to empty: no commit at every start
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := deleteRange(tx.Bucket(bucketEntries), 0, ^uint64(0)); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Delete(keyHardState); err != nil {
			return err
		}
		return meta.Delete(keySnapshot)
	})
	if err != nil {
		return fmt.Errorf("%w: empty the old log buckets: %w", ErrStorage, err)
	}
	return nil
}

// encodeState encodes a HardState (nil if empty) and snapshot metadata
// (nil if none) for the WAL.
func encodeState(hs hardState, sm snapshotMeta) ([]byte, *wal.Snapshot, error) {
	var hb []byte
	if !raftIsEmptyHardState(hs) {
		b, err := marshalHardState(&hs)
		if err != nil {
			return nil, nil, err
		}
		hb = b
	}
	if sm.Index == 0 {
		return hb, nil, nil
	}
	snap, err := walSnapshot(&sm)
	return hb, snap, err
}

func walSnapshot(sm *snapshotMeta) (*wal.Snapshot, error) {
	b, err := marshalSnapMeta(sm)
	if err != nil {
		return nil, err
	}
	return &wal.Snapshot{Index: sm.Index, Term: sm.Term, Data: b}, nil
}

// close writes a HardState still held back (a clean stop keeps the newest
// commit index), then closes the file.
func (s *diskStorage) close() error {
	var err error
	if s.wal != nil {
		if s.hsDirty && !s.failed {
			err = s.saveHardState()
		}
		if cerr := s.wal.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("%w: close the log: %w", ErrStorage, cerr))
		}
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

// load is the persisted state the WAL replayed, with the members from
// raft.db.
func (s *diskStorage) load() (*persisted, error) {
	st := s.wal.State()
	p := &persisted{members: map[uint64]memberMeta{}, first: st.First, last: st.Last}
	if b := st.HardState; b != nil {
		hs, err := unmarshalHardState(b)
		if err != nil {
			return nil, fmt.Errorf("%w: hardstate: %w", ErrCorrupt, err)
		}
		p.hardState = hs
		s.hs = hs
	}
	if sn := st.Snapshot; sn != nil {
		sm, err := unmarshalSnapMeta(sn.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: snapshot metadata: %w", ErrCorrupt, err)
		}
		p.snapMeta = sm
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		return readMembers(tx, p.members)
	})
	if err != nil {
		return nil, loadError(err)
	}
	return p, nil
}

// readMembers reads raft.db's member records into into.
func readMembers(tx *bolt.Tx, into map[uint64]memberMeta) error {
	return tx.Bucket(bucketMembers).ForEach(func(_, v []byte) error {
		var m memberMeta
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("%w: member: %w", ErrCorrupt, err)
		}
		into[m.ID] = m
		return nil
	})
}

// loadError classifies an error of reading raft.db (nil stays nil).
func loadError(err error) error {
	if err == nil || errors.Is(err, ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%w: load: %w", ErrStorage, err)
}

// loadLegacy reads what raft.db held before the WAL: everything but the
// entries, of which it reads the first and last index.
func (s *diskStorage) loadLegacy() (*persisted, error) {
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
		return readMembers(tx, p.members)
	})
	if err != nil {
		return nil, loadError(err)
	}
	return p, nil
}

// forEachEntry calls fn with every entry in index order, checking
// indexes; one read's worth of entries is in memory at a time. For
// CheckDataDir, on a stopped member.
func (s *diskStorage) forEachEntry(fn func(e logEntry) error) error {
	st := s.wal.State()
	if st.Last == 0 {
		return nil
	}
	return s.readEntries(st.First, st.Last+1, func(e logEntry) (bool, error) { return true, fn(e) })
}

// forEachLegacyEntry is forEachEntry over raft.db's entries bucket, for
// the conversion to the WAL, in one read transaction.
func (s *diskStorage) forEachLegacyEntry(fn func(e logEntry) error) error {
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

// save durably writes one Ready's worth of state with one WAL Save:
// snapshot metadata first (a received snapshot replaces the log), then
// HardState, then entries (an entry at index i replaces every persisted
// entry at index >= i).
func (s *diskStorage) save(hs hardState, ents []logEntry, snap *snapshotMeta) error {
	mustSync := len(ents) > 0 || snap != nil
	if !raftIsEmptyHardState(hs) {
		mustSync = mustSync || hs.Term != s.hs.Term || hs.Vote != s.hs.Vote
		s.hs, s.hsDirty = hs, true
	}
	if !mustSync {
		return nil
	}
	var ws *wal.Snapshot
	if snap != nil {
		var err error
		if ws, err = walSnapshot(snap); err != nil {
			return fmt.Errorf("%w: encode snapshot metadata: %w", ErrStorage, err)
		}
	}
	wents := make([]wal.Entry, len(ents))
	for i := range ents {
		data, err := marshalEntry(&ents[i])
		if err != nil {
			return fmt.Errorf("%w: encode entry: %w", ErrStorage, err)
		}
		wents[i] = wal.Entry{Index: ents[i].Index, Term: ents[i].Term, Data: data}
	}
	return s.walSave(ws, true, wents)
}

// walSave appends ws, the newest HardState if not written yet, and ents.
func (s *diskStorage) walSave(ws *wal.Snapshot, reset bool, ents []wal.Entry) error {
	if s.failed {
		return fmt.Errorf("%w: write: an earlier write failed", ErrStorage)
	}
	var hb []byte
	if s.hsDirty {
		b, err := marshalHardState(&s.hs)
		if err != nil {
			return fmt.Errorf("%w: encode hardstate: %w", ErrStorage, err)
		}
		hb = b
	}
	if err := s.wal.Save(hb, ws, reset, ents); err != nil {
		s.failed = true
		return walError("write", err)
	}
	s.hsDirty = false
	return nil
}

// saveHardState writes a HardState held back (a commit index alone).
func (s *diskStorage) saveHardState() error { return s.walSave(nil, false, nil) }

// readEntries calls fn with the entries [lo, hi) of the log.
func (s *diskStorage) readEntries(lo, hi uint64, fn func(logEntry) (bool, error)) error {
	err := s.wal.Entries(lo, hi, func(we wal.Entry) (bool, error) {
		e, err := unmarshalEntry(we.Data)
		if err != nil {
			return false, fmt.Errorf("%w: entry %d: %w", ErrCorrupt, we.Index, err)
		}
		if e.Index != we.Index || e.Term != we.Term {
			return false, fmt.Errorf("%w: record of entry %d/%d holds entry %d/%d", ErrCorrupt, we.Index, we.Term, e.Index, e.Term)
		}
		return fn(e)
	})
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return walError("read the log", err)
	}
	return err
}

// term is the term of entry i, which the WAL holds.
func (s *diskStorage) term(i uint64) (uint64, error) {
	t, err := s.wal.Term(i)
	if err != nil {
		return 0, walError(fmt.Sprintf("read term of %d", i), err)
	}
	return t, nil
}

// saveSnapshotMeta records a locally taken snapshot, then drops the log
// segments holding only entries up to compactIndex.
func (s *diskStorage) saveSnapshotMeta(meta snapshotMeta, compactIndex uint64) error {
	ws, err := walSnapshot(&meta)
	if err != nil {
		return fmt.Errorf("%w: encode snapshot metadata: %w", ErrStorage, err)
	}
	// The newest HardState goes too (walSave), so the commit index on disk
	// is never below the snapshot's (applied, so committed) index.
	if err := s.walSave(ws, false, nil); err != nil {
		return err
	}
	if compactIndex == 0 {
		return nil
	}
	if err := s.wal.Compact(compactIndex); err != nil {
		s.failed = true
		return walError("compact", err)
	}
	return nil
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
		if s.beforeCommit != nil {
			return s.beforeCommit()
		}
		return nil
	})
	if err != nil {
		s.failed = true
		return fmt.Errorf("%w: write: %w", ErrStorage, err)
	}
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
