// Package bench is Arbor's benchmark engine, shared by `arbor bench` and by
// the comparison module in bench/ (which adds ZooKeeper and etcd stores).
//
// A Store is the handful of operations the workloads need, implemented once
// per system; one Store is one client session. A Workload drives stores
// through an Env and returns a Result. Most workloads are a setup, a timed
// loop of one operation run by RunOps (N clients, a duration or an op
// count, a latency histogram) and a verification of what the loop wrote;
// sessions and failover measure other things and drive stores themselves.
//
// Adding a workload is one file: implement Workload and call Register from
// an init function.
//
// Every result is checked, not only timed: a get must return the value
// written for its key, the last acknowledged set of each key must be what a
// linearizable read returns afterwards, and so on. Failed operations and
// failed checks are counted in Result.Errors, never dropped.
package bench
