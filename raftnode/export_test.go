package raftnode

// SetReceivedSnapshotSyncFault makes f run before each fsync of a snapshot
// file n receives; an error fails the fsync. Call it before Run.
func SetReceivedSnapshotSyncFault(n *Node, f func() error) { n.beforeRecvSync = f }
