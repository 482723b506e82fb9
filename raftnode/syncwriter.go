package raftnode

import (
	"fmt"
	"os"
)

// snapSyncEvery is how many bytes of a snapshot file are written between
// two fsyncs of it.
const snapSyncEvery = 8 << 20

// syncingWriter writes a snapshot file and fsyncs it every snapSyncEvery
// bytes, so that no more than that is ever dirty in the page cache. A
// snapshot of a large state written whole and fsynced once at the end
// leaves hundreds of megabytes for the one fsync (or the kernel's
// writeback) to push out, and on a journaling file system (ext4's ordered
// data) an fsync of raft.db that comes meanwhile can wait for that flush:
// with every member snapshotting at the same index, no follower answers
// the leader for longer than an election timeout and the leader steps
// down (check quorum). Its errors are storage errors, so they stay apart
// from errors of a reader copied into it (a broken stream) and from a
// state machine's own.
type syncingWriter struct {
	f     *os.File
	dirty int
}

func (s *syncingWriter) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("%w: write snapshot file: %w", ErrStorage, err)
	}
	if s.dirty += n; s.dirty >= snapSyncEvery {
		s.dirty = 0
		if err := s.f.Sync(); err != nil {
			return n, fmt.Errorf("%w: fsync snapshot file: %w", ErrStorage, err)
		}
	}
	return n, nil
}
