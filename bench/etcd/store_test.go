package etcd

import (
	"testing"

	"github.com/arbor-db/arbor/bench/storetest"
)

// The store against a running 3-member cluster (scripts/etcd.sh start),
// run only with ARBOR_BENCH_PEERS=1; ARBOR_BENCH_ETCD overrides the endpoints.
func TestWorkloads(t *testing.T) {
	storetest.Run(t, "etcd", "127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793", "ARBOR_BENCH_ETCD", Dial)
}
