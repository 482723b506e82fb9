// Package faults proves Arbor under faults at the process level: three real
// `arbor server` processes on 127.0.0.1, 127.0.0.2 and 127.0.0.3 inside a
// private network (and mount) namespace, with clients on every member
// recording histories while the test partitions the network (symmetric and
// one-way, with nftables), kills members with SIGKILL, pauses them with
// SIGSTOP and fills their disks. At the end the histories are checked with
// server/servertest/lincheck (linearizability, monotonic local reads,
// ephemerals), the members' state hashes are compared, and the data dirs
// are checked after a clean stop.
//
// The test binary re-executes itself under `unshare --net --mount` and runs
// every member as its own uid, so nftables rules can tell members apart by
// socket owner (`meta skuid`): outgoing peer connections all leave from
// 127.0.0.1 whatever address their member listens on. Without root,
// unshare, ip or nft the tests skip, except with CI=true, where they fail.
//
// The short suite covers every fault kind in a few runs. ARBOR_FAULT_LONG=1h
// (any Go duration) repeats random runs for that long and prints figures.
package faults
