package raftnode

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/arbor-db/arbor/raftnode/wal"
)

// CheckDataDir checks a stopped member's data dir without changing it:
// raft.db passes bbolt's consistency check (tx.Check); the log loads
// (every record checks out, no gaps, terms never decrease; an unsynced
// tail a crash left is not a problem: a restart drops it); the log and the
// snapshot agree (the snapshot the log records has its verified file with
// the same term and index, the log continues right after it or overlaps it
// with the same term, the commit index lies between the snapshot and the
// last entry); and every snapshot file in snap/ verifies (sizes, CRC).
// Problems wrap ErrCorrupt; an unreadable dir wraps ErrStorage.
func CheckDataDir(dir string) error {
	db, err := bolt.Open(filepath.Join(dir, "raft.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("%w: open raft.db: %w", ErrStorage, err)
	}
	defer db.Close()
	var errs []error
	err = db.View(func(tx *bolt.Tx) error {
		for cerr := range tx.Check() {
			errs = append(errs, fmt.Errorf("%w: bbolt: %w", ErrCorrupt, cerr))
		}
		for _, b := range [][]byte{bucketEntries, bucketMeta, bucketMembers} {
			if tx.Bucket(b) == nil {
				errs = append(errs, fmt.Errorf("%w: bucket %q missing", ErrCorrupt, b))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: read raft.db: %w", ErrStorage, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	disk := &diskStorage{db: db}
	walDir := filepath.Join(dir, "wal")
	exists, err := wal.Exists(walDir)
	if err != nil {
		return walError("look for the log", err)
	}
	var p *persisted
	forEach := disk.forEachLegacyEntry // a dir an older version wrote
	if exists {
		w, _, err := wal.Open(walDir, wal.Options{ReadOnly: true})
		if err != nil {
			return walError("open the log", err)
		}
		defer w.Close()
		disk.wal = w
		forEach = disk.forEachEntry
		p, err = disk.load()
		if err != nil {
			return err
		}
	} else if p, err = disk.loadLegacy(); err != nil {
		return err
	}
	return errors.Join(checkLogAgainstSnapshot(forEach, p), checkSnapshotFiles(filepath.Join(dir, "snap"), p))
}

// checkLogAgainstSnapshot reads the log one entry at a time (it may be far
// larger than memory).
func checkLogAgainstSnapshot(forEach func(func(logEntry) error) error, p *persisted) error {
	var errs []error
	bad := func(format string, args ...any) {
		if len(errs) < 100 { // a broken log is reported, not listed whole
			errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...))
		}
	}
	snap := p.snapMeta
	last := snap.Index
	var prevTerm uint64
	err := forEach(func(e logEntry) error {
		if e.Term < prevTerm {
			bad("entry %d has term %d below the term %d of the entry before it", e.Index, e.Term, prevTerm)
		}
		if e.Index == snap.Index && e.Term != snap.Term {
			bad("entry %d has term %d but the snapshot at that index has term %d", e.Index, e.Term, snap.Term)
		}
		if e.Index < snap.Index && e.Term > snap.Term {
			bad("entry %d before the snapshot has term %d above the snapshot's %d", e.Index, e.Term, snap.Term)
		}
		prevTerm = e.Term
		last = max(last, e.Index)
		return nil
	})
	if err != nil {
		errs = append(errs, err) // a gap or an undecodable entry ends the scan
	}
	if p.first > snap.Index+1 {
		bad("log starts at %d but the snapshot ends at %d: entries missing", p.first, snap.Index)
	}
	if c := p.hardState.Commit; c > last {
		bad("commit index %d beyond the last entry %d", c, last)
	}
	if c := p.hardState.Commit; c < snap.Index {
		bad("commit index %d below the snapshot index %d", c, snap.Index)
	}
	return errors.Join(errs...)
}

func checkSnapshotFiles(snapDir string, p *persisted) error {
	names, err := listSnapshots(snapDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: list snapshots: %w", ErrStorage, err)
	}
	var errs []error
	found := false
	for _, n := range names {
		hdr, err := verifySnapshotFile(filepath.Join(snapDir, n))
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: snapshot %s: %w", ErrCorrupt, n, err))
			continue
		}
		term, index := parseSnapName(n)
		if hdr.term != term || hdr.index != index {
			errs = append(errs, fmt.Errorf("%w: snapshot %s holds term %d index %d", ErrCorrupt, n, hdr.term, hdr.index))
		}
		if index == p.snapMeta.Index && term == p.snapMeta.Term {
			found = true
		}
	}
	if p.snapMeta.Index > 0 && !found {
		errs = append(errs, fmt.Errorf("%w: the log records snapshot %s, which is missing or corrupt",
			ErrCorrupt, snapFileName(p.snapMeta.Term, p.snapMeta.Index)))
	}
	return errors.Join(errs...)
}
