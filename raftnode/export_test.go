package raftnode

import "io"

// SetReceivedSnapshotSyncFault makes f run before each fsync of a snapshot
// file n receives; an error fails the fsync. Call it before Run.
func SetReceivedSnapshotSyncFault(n *Node, f func() error) { n.beforeRecvSync = f }

// SetSnapshotSendFilter makes n stream every snapshot file it sends to a
// peer through f (tests slow a stream down). Call it before Run.
func SetSnapshotSendFilter(n *Node, f func(io.Reader) io.Reader) { n.snapSendFilter = f }
