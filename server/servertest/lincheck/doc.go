// Package lincheck records client histories against an Arbor cluster and
// checks them: linearizability of the tree (porcupine), monotonic `local`
// reads per connection, ephemerals gone with their session's close, equal
// state hashes across members, all with no knowledge of how the cluster is
// run. The in-process fault suite (server/servertest/faults) and the
// process-level suite (cmd/arbor/e2e/faults) both use it.
//
// Recording: make one Recorder per run. Wrap every client.Client (one per
// session) with Recorder.Wrap and issue the workload through the returned
// *Conn, whose methods record a call before the request and a return after
// it. Outcomes the client reports as indeterminate (client.IsIndeterminate:
// TIMEOUT, UNAVAILABLE, a lost connection) are recorded as Unknown: such a
// write may or may not have happened, so History gives it a return time at
// the end of the history and the model lets it take effect or not. Failed
// reads are dropped, since they observed nothing. Code that does not use
// client.Client records by hand with Recorder.Call and Recorder.Return.
//
// Checking, after the run with writes stopped and the network healed:
//
//	h := rec.History()
//	res := lincheck.CheckLinearizable(h, time.Minute)   // porcupine, partitioned by path
//	errs := lincheck.CheckLocalReadsMonotonic(h)          // per connection
//	errs = append(errs, lincheck.CheckEphemerals(h)...)   // reads after a close ack
//	err := lincheck.CheckStateHashes(ctx, httpAddrs)      // GET /debug/state on each member
//
// and, when res.Result is not porcupine.Ok, SaveVisualization writes
// porcupine's HTML view of the failing partition.
//
// The model is a register per path: existence, data and version, changed by
// create, set (with a version: compare-and-set), delete (with a version) and
// CAS (a multi of check(path, version) then set(path, data)), observed by
// linearizable get. Workloads should write unique data per write (the
// recorder does not require it, but the checker finds far more with it).
// Ephemeral nodes vanish without an operation on their path when their
// session closes or expires, so paths with ephemeral creates are left out of
// the linearizability check and covered by CheckEphemerals instead; `local`
// reads are only sequentially consistent, so they are left out too and
// covered by CheckLocalReadsMonotonic.
//
// Sessions, watches and locks have logs and workloads of their own, each
// with a Check function: SessionLog and Abandoner (CheckExpiry), WatchLog
// and StartWatchRun (CheckWatch), LockLog and StartLockRun (CheckLocks:
// fencing tokens unique and in grant order, and no two holders of a lock
// at once unless the earlier had learned, through Client.Context, that it
// lost it).
package lincheck
