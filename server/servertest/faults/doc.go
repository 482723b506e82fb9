// Package faults is the in-process half of Arbor's proof under faults: 3 to
// 5 whole members (package server) on raftnode/rafttest's fault-injecting
// in-memory network, a nemesis that partitions, degrades the network, and
// crashes and restarts members on their data dirs (fsync on), random
// client workloads recorded with package lincheck, and at the end the
// checkers: linearizability (porcupine), monotonic `local` reads,
// ephemerals gone with their session's close, equal state hashes across
// members, and every data dir's consistency (raftnode.CheckDataDir).
//
// Everything random follows one seed: the cluster size, the nemesis
// schedule and every client's choice of operations. A failing seed replays
// the same fault schedule and workload; goroutine interleavings and the
// timing of messages are not replayed bit for bit, so a replay usually, not
// always, hits the same violation. docs/reliability.md has the commands.
//
// The package has only tests; this file holds its documentation.
package faults
