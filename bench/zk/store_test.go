package zk

import (
	"testing"

	"github.com/arbor-db/arbor/bench/storetest"
)

// The store against a running 3-member cluster (scripts/zookeeper.sh start),
// run only with ARBOR_BENCH_PEERS=1; ARBOR_BENCH_ZK overrides the endpoints.
func TestWorkloads(t *testing.T) {
	storetest.Run(t, "zookeeper", "127.0.0.1:21811,127.0.0.1:21812,127.0.0.1:21813", "ARBOR_BENCH_ZK", Dial)
}
