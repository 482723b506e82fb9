// Package raftnode runs one member of a raft group built on
// go.etcd.io/raft/v3 (pinned at v3.6.0, gogoproto value types).
//
// It owns everything raft needs besides the algorithm: the Ready loop
// (a single goroutine drives a raft.RawNode), durable storage of the log,
// HardState and snapshot metadata in a write-ahead log (DataDir/wal, package
// raftnode/wal), member metadata in bbolt (DataDir/raft.db), snapshot files
// (DataDir/snap), the peer transport (framed TCP), membership changes and
// linearizable reads through ReadIndex.
//
// It moves opaque commands: committed entries are handed, in log order and
// from one goroutine, to the StateMachine supplied by the caller. raftnode
// knows nothing about what the commands mean.
//
// Ready loop order (one iteration): persist snapshot metadata, HardState
// and entries with one WAL append and fdatasync (the snapshot file itself is
// already durable); send messages; restore a received snapshot into the state
// machine; apply committed entries (one StateMachine.Apply call per Ready,
// conf changes applied to raft in the same pass); Advance; maybe take a
// snapshot and compact. Any storage error ends Run with that error: the
// member stops and is never retried.
//
// A state machine that implements SnapshotViewer has its snapshot file
// written on a goroutine of Run's while ticks and applies go on; the log is
// compacted on the raft goroutine once the file is durable. raft's Storage
// (logStore) keeps only the newest Config.MaxLogCacheBytes of entries in
// memory and reads older ones from the WAL.
//
// Only raftpb.go imports raftpb: the rest of the package names its types by
// the aliases there and builds its values with the helpers there.
package raftnode
