package zk

import (
	"os"
	"strings"
	"testing"

	"github.com/arbor-db/arbor/client/bench"
)

// The store against a running 3-member cluster (scripts/zookeeper.sh start),
// run only with ARBOR_BENCH_PEERS=1; ARBOR_BENCH_ZK overrides the endpoints.
func TestWorkloads(t *testing.T) {
	if os.Getenv("ARBOR_BENCH_PEERS") != "1" {
		t.Skip("needs a running cluster: set ARBOR_BENCH_PEERS=1")
	}
	eps := "127.0.0.1:21811,127.0.0.1:21812,127.0.0.1:21813"
	if v := os.Getenv("ARBOR_BENCH_ZK"); v != "" {
		eps = v
	}
	for _, tt := range []struct {
		workload string
		opts     bench.Options
		want     int64
	}{
		{"create", bench.Options{Clients: 4, Ops: 100}, 100},
		{"set", bench.Options{Clients: 4, Ops: 100, Keys: 16}, 100},
		{"get-linearizable", bench.Options{Clients: 4, Ops: 100, Keys: 16}, 100},
		{"get-local", bench.Options{Clients: 4, Ops: 100, Keys: 16}, 100},
		{"multi", bench.Options{Clients: 2, Ops: 50, Keys: 16}, 50},
		{"sessions", bench.Options{Clients: 8, Sessions: 100}, 100},
	} {
		t.Run(tt.workload, func(t *testing.T) {
			env := &bench.Env{System: "zookeeper", Endpoints: strings.Split(eps, ","), DialAt: Dial, Options: tt.opts}
			res, err := bench.Run(t.Context(), tt.workload, env)
			if err != nil {
				t.Fatal(err)
			}
			if res.Ops != tt.want || res.Errors != 0 {
				t.Fatalf("%d ops, %d errors (first: %s); want %d ops, no errors", res.Ops, res.Errors, res.FirstError, tt.want)
			}
			t.Logf("%s: %.0f ops/s, p50 %.2f ms, p99 %.2f ms", tt.workload, res.OpsPerSec, res.P50Ms, res.P99Ms)
		})
	}
}
