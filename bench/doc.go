// Package bench is the comparison module: it runs the workloads of
// github.com/arbor-db/arbor/client/bench against ZooKeeper (package zk)
// and etcd (package etcd) as well as Arbor, and cmd/matrix runs the whole
// comparison. It is its own module so that the main module does not depend
// on either client. See README.md.
package bench
