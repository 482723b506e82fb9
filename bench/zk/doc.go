// Package zk is a client/bench Store for ZooKeeper, over
// github.com/go-zookeeper/zk: one Store is one ZooKeeper session.
//
// A local get is a plain ZooKeeper read (served by the connected server);
// a linearizable get is sync then read, ZooKeeper's closest equivalent
// (not strictly linearizable: a sync is not a quorum read).
package zk
