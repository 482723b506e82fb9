// Package tree is Arbor's znode tree: paths, nodes, stats, versions,
// sequential/ephemeral/container/TTL flags, multi-op atomicity and the
// snapshot encoding.
//
// The tree follows ZooKeeper's DataTree rules for stats (see Apply). It is a
// pure, deterministic state machine: it reads no clock, uses no randomness,
// holds no locks and starts no goroutines. Every mutation takes the zxid and
// the time (Unix ms) chosen by the proposer, so applying the same commands to
// the same snapshot gives the same tree, byte for byte, on every member.
//
// Children are kept sorted in chunks of at most 256 (see children.go), so a
// create or delete under a parent with a million children costs a binary
// search and a move of at most 2 KiB, not of the whole child list, while a
// small parent still costs one short slice.
//
// Concurrency: a Tree is not safe for concurrent use. The server's single
// apply goroutine is its only writer; readers must be serialised with it by
// the caller.
//
// Ownership: data passed in an Op is retained by the tree, and data returned
// by Get or carried by an Event is the tree's own slice; nobody may modify
// either afterwards.
//
// The subtree /arbor (Reserved) is written only by ops marked System.
package tree
