package raftnode

import "io"

// SetReceivedSnapshotSyncFault makes f run before each fsync of a snapshot
// file n receives; an error fails the fsync. Call it before Run.
func SetReceivedSnapshotSyncFault(n *Node, f func() error) { n.beforeRecvSync = f }

// SetSnapshotSendFilter makes n stream every snapshot file it sends to a
// peer through f (tests slow a stream down). Call it before Run.
func SetSnapshotSendFilter(n *Node, f func(io.Reader) io.Reader) { n.snapSendFilter = f }

// LogCachePeak is the most bytes of log entries n held in memory since New.
func LogCachePeak(n *Node) uint64 { return n.store.cachePeak.Load() }

// LogDiskReads counts the reads of log entries (or terms) n made from
// raft.db because its cache no longer held them.
func LogDiskReads(n *Node) uint64 { return n.store.diskReads.Load() }
