// Command matrix runs the comparison: the workloads of client/bench
// against Arbor, ZooKeeper and etcd clusters that are already running
// (run-matrix.sh starts and stops them), interleaving the systems and
// repeating every cell, and writes the raw results as JSON lines and a
// markdown table of medians.
//
//	go run ./cmd/matrix --arbor EPS --zookeeper EPS --etcd EPS \
//	    --out results.md --raw results.jsonl
//
// A system whose endpoints are empty is skipped.
package main
