package raftnode

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// errSnapshotStopped fails the writer of an in-flight snapshot view once
// Run is stopping.
var errSnapshotStopped = errors.New("raftnode: stopping, snapshot write abandoned")

// localSnapshot is a snapshot of this member's own state at index, as the
// raft goroutine saw it when it was taken.
type localSnapshot struct {
	term, index uint64
	confState   confState
	members     []memberMeta
	logBytes    uint64    // bytesSinceSnap when it was taken
	taken       time.Time // when it was taken, for the log line that saves it
}

// snapshotDue reports whether a snapshot should be taken now: every
// SnapshotEntries applied entries or SnapshotBytes of them, or once a
// member was added.
//
// The members take theirs at different indexes: each at the multiples of
// SnapshotEntries shifted by its place among the members (snapshotPhase).
// Taken at the same index, all of them encode and write the whole state at
// once, on machines that often share cores and disks with each other and
// their clients, and every write waits for a quorum of members that are
// all busy; staggered, a quorum is mostly free.
func (n *Node) snapshotDue() bool {
	if n.applied <= n.snapIndex {
		return false
	}
	if n.bytesSinceSnap >= n.cfg.SnapshotBytes || n.forceSnapshot {
		return true
	}
	every := n.cfg.SnapshotEntries
	if n.applied >= n.snapIndex+every {
		return true
	}
	phase := n.snapshotPhase()
	return (n.applied+phase)/every > (n.snapIndex+phase)/every
}

// snapshotPhase is this member's shift of the snapshot indexes: its place
// among the voters and learners (by id) times SnapshotEntries over their
// number. Deciding when to snapshot never changes the state, so members
// need not agree on it.
func (n *Node) snapshotPhase() uint64 {
	members := len(n.confState.Voters) + len(n.confState.Learners)
	if members < 2 {
		return 0
	}
	rank := 0
	for _, ids := range [][]uint64{n.confState.Voters, n.confState.Learners} {
		for _, id := range ids {
			if id < n.id {
				rank++
			}
		}
	}
	return uint64(rank) * n.cfg.SnapshotEntries / uint64(members)
}

// maybeSnapshot takes a snapshot when one is due and none is being written.
// A state machine that implements SnapshotViewer has its view written to
// the file on another goroutine (startSnapshotWrite), so ticks and applies
// go on; any other writes the file here, on the raft goroutine. Either way
// the log is compacted only once the file is durable (installSnapshot).
func (n *Node) maybeSnapshot() error {
	if n.snapDone != nil || !n.snapshotDue() {
		return nil
	}
	n.forceSnapshot = false
	index := n.applied
	term, err := n.store.Term(index)
	if err != nil {
		return fmt.Errorf("%w: term of %d: %w", ErrStorage, index, err)
	}
	s := localSnapshot{
		term: term, index: index, confState: cloneConfState(n.confState),
		members: n.memberList(), logBytes: n.bytesSinceSnap, taken: time.Now(),
	}
	viewer, ok := n.sm.(SnapshotViewer)
	if !ok {
		if _, err := writeSnapshotFile(n.snapDir, term, index, s.confState, s.members, n.sm.Snapshot); err != nil {
			return err
		}
		return n.installSnapshot(s)
	}
	view, err := viewer.SnapshotView()
	if err != nil {
		return fmt.Errorf("raftnode: snapshot view at %d: %w", index, err)
	}
	n.startSnapshotWrite(s, view)
	return nil
}

// startSnapshotWrite writes view's snapshot file on a goroutine Run waits
// for (stopSnapshotWrite). Its result comes back to the loop on n.snapDone,
// which finishSnapshotWrite handles on the raft goroutine.
func (n *Node) startSnapshotWrite(s localSnapshot, view io.WriterTo) {
	done := make(chan error, 1)
	n.snapDone, n.snapPending = done, s
	n.snapWG.Add(1)
	go func() {
		defer n.snapWG.Done()
		_, err := writeSnapshotFile(n.snapDir, s.term, s.index, s.confState, s.members, func(w io.Writer) error {
			_, err := view.WriteTo(stopWriter{w: w, stop: n.snapStop})
			return err
		})
		done <- err
	}()
}

// finishSnapshotWrite takes the result of the in-flight write. A failed
// write is fatal, like any storage error (the temp file is gone already):
// it is not tried again.
func (n *Node) finishSnapshotWrite(err error) error {
	s := n.snapPending
	n.snapDone, n.snapPending = nil, localSnapshot{}
	if err != nil {
		return fmt.Errorf("raftnode: write snapshot %d: %w", s.index, err)
	}
	if err := n.installSnapshot(s); err != nil {
		return err
	}
	// A member added while the file was written asks for a newer one.
	return n.maybeSnapshot()
}

// stopSnapshotWrite makes an in-flight write fail (its temp file is
// removed) and waits for its goroutine. Run calls it once the loop ended.
func (n *Node) stopSnapshotWrite() {
	close(n.snapStop)
	n.snapWG.Wait()
}

// installSnapshot records the durable snapshot file s in raft's storage and
// the WAL and compacts the log, keeping CompactKeepEntries for slow
// followers.
func (n *Node) installSnapshot(s localSnapshot) error {
	if s.index <= n.snapIndex {
		// A snapshot from the leader was installed while this one was
		// written: it is newer, and the log no longer holds this one's
		// entries. The file is left for purgeSnapshots.
		n.log.Info("dropping snapshot overtaken by an installed one", "index", s.index, "installed", n.snapIndex)
		return nil
	}
	index, term := s.index, s.term
	meta, err := n.store.createSnapshot(index, s.confState)
	if err != nil {
		return err
	}
	var compact uint64
	if index > n.cfg.CompactKeepEntries {
		compact = index - n.cfg.CompactKeepEntries
	}
	if first, _ := n.store.FirstIndex(); compact >= first {
		// Before the WAL drops the entries: it reads compact's term.
		if err := n.store.compact(compact); err != nil {
			return err
		}
	} else {
		compact = 0
	}
	if err := n.disk.saveSnapshotMeta(meta, compact); err != nil {
		return err
	}
	n.snapIndex = index
	n.snapIndexPub.Store(index)
	n.bytesSinceSnap -= s.logBytes
	n.cfg.Metrics.incSnapshotsSaved()
	// took runs from the view to the compacted log: how long a snapshot
	// was in progress, which benchmarks line latency up against.
	n.log.Info("saved snapshot", "index", index, "term", term, "compacted_to", compact,
		"took", time.Since(s.taken).Round(time.Millisecond))
	if err := purgeSnapshots(n.snapDir, snapshotsKept); err != nil {
		return fmt.Errorf("%w: purge snapshots: %w", ErrStorage, err)
	}
	return nil
}

// stopWriter fails every write once stop is closed, so a view's WriteTo
// ends when Run stops instead of finishing a file nobody will record.
type stopWriter struct {
	w    io.Writer
	stop <-chan struct{}
}

func (s stopWriter) Write(p []byte) (int, error) {
	select {
	case <-s.stop:
		return 0, errSnapshotStopped
	default:
	}
	return s.w.Write(p)
}
