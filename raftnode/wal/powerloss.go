package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// ledger, once TrackSyncs is called (fault tests), records how much of each
// segment an fdatasync has made durable, so that LoseUnsynced can do to a
// stopped member's log what a power cut does to it.
var ledger struct {
	sync.Mutex
	// on is read without the mutex first, so that a member's syncs take no
	// process-wide lock unless a fault test turned the ledger on.
	on     atomic.Bool
	synced map[string]int64
	// off holds the dirs PowerCut cut off: their syncs fail until
	// LoseUnsynced, and their synced sizes are frozen as of the cut (and
	// the syncs under way at it).
	off map[string]bool
}

// TrackSyncs starts recording, for every WAL in this process, how much of
// each segment file is durable. For fault tests that simulate power cuts;
// it costs a mutex per sync.
func TrackSyncs() {
	ledger.Lock()
	defer ledger.Unlock()
	if !ledger.on.Load() {
		ledger.synced, ledger.off = map[string]int64{}, map[string]bool{}
		ledger.on.Store(true)
	}
}

// PowerCut cuts the power of the logs in dirs, all at one instant: from now
// on their syncs fail (so nothing more is acknowledged), and what they had
// synced is what LoseUnsynced will leave. Stop the members, then call
// LoseUnsynced for each dir.
func PowerCut(dirs ...string) {
	ledger.Lock()
	defer ledger.Unlock()
	for _, d := range dirs {
		ledger.off[filepath.Clean(d)] = true
	}
}

// duringSync, when set (tests), runs inside a sync that began powered,
// just before its fdatasync.
var duringSync func()

// errPowerCut is what a sync of a log without power returns.
var errPowerCut = errors.New("wal: the power is cut (fault test)")

// powered says whether path's log may sync.
func powered(path string) bool {
	if !ledger.on.Load() {
		return true
	}
	ledger.Lock()
	defer ledger.Unlock()
	return !ledger.off[filepath.Dir(path)]
}

// noteSynced records that path is durable up to size. A sync counts even
// if PowerCut came while it ran: it began powered, and its member goes on
// as if it is durable (a follower acknowledges it), so the cut is taken to
// have come just after it; dropping it would lose, in the model only,
// entries a quorum acknowledged.
func noteSynced(path string, size int64) {
	if !ledger.on.Load() {
		return
	}
	ledger.Lock()
	defer ledger.Unlock()
	ledger.synced[path] = size
}

func noteRemoved(path string) {
	if !ledger.on.Load() {
		return
	}
	ledger.Lock()
	defer ledger.Unlock()
	delete(ledger.synced, path)
}

// LoseUnsynced cuts every segment of the stopped log in dir back to what
// an fdatasync made durable (before PowerCut, if dir was cut), and removes
// segments never synced, as a power cut would (the page cache is lost; the
// disk keeps what was synced), and powers dir on again. It returns how
// many bytes went. TrackSyncs must have been called before the log was
// written.
func LoseUnsynced(dir string) (int64, error) {
	ledger.Lock()
	defer ledger.Unlock()
	if !ledger.on.Load() {
		return 0, errors.New("wal: LoseUnsynced without TrackSyncs")
	}
	dir = filepath.Clean(dir)
	defer delete(ledger.off, dir)
	seqs, err := listSegments(dir)
	if err != nil {
		return 0, err
	}
	var lost int64
	for _, seq := range seqs {
		path := filepath.Join(dir, segmentName(seq))
		st, err := os.Stat(path)
		if err != nil {
			return lost, fmt.Errorf("wal: %w", err)
		}
		synced, ok := ledger.synced[path]
		if !ok {
			lost += st.Size()
			if err := os.Remove(path); err != nil {
				return lost, fmt.Errorf("wal: %w", err)
			}
			continue
		}
		if st.Size() > synced {
			lost += st.Size() - synced
			if err := os.Truncate(path, synced); err != nil {
				return lost, fmt.Errorf("wal: %w", err)
			}
		}
	}
	return lost, nil
}
