package main

import (
	"strings"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client/bench"
)

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{5}, 5},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, 10, 1000}, 10}, // an outlier does not move it
	} {
		if got := median(tt.xs); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.want)
		}
	}
}

func TestReportTakesMediansPerCell(t *testing.T) {
	cfg := config{workloads: []string{"set"}, clients: []int{1, 16}, reps: 3}
	cfg.opts.Duration = 10 * time.Second
	var results []bench.Result
	for i, ops := range []float64{100, 300, 200} {
		results = append(results,
			bench.Result{System: "arbor", Workload: "set", Clients: 1, Ops: 10, OpsPerSec: ops, P50Ms: float64(i + 1), P99Ms: 9},
			bench.Result{System: "etcd", Workload: "set", Clients: 1, Ops: 10, OpsPerSec: ops * 2, P50Ms: 0.5, P99Ms: 4, Errors: 1},
		)
	}
	// A cell that never ran shows its errors, no figures.
	results = append(results, bench.Result{System: "etcd", Workload: "set", Clients: 16, Errors: 1, FirstError: "down"})
	var b strings.Builder
	if err := writeReport(&b, cfg, []string{"arbor", "etcd"}, results); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| 1 | 200 | 2.00 | 9.00 | 0 | 400 | 0.50 | 4.00 | 3 |",
		"| 16 | – | – | – | 0 | – | – | – | 1 |",
		"| 2.00 | 0.50 |", // set p50, one client
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestParseNeedsASystem(t *testing.T) {
	if _, err := parse([]string{"--clients", "1"}); err == nil {
		t.Fatal("parse accepted no systems")
	}
	cfg, err := parse([]string{"--etcd", "127.0.0.1:2379", "--clients", "1,4"})
	if err != nil || len(cfg.clients) != 2 || cfg.endpoints["etcd"] == "" {
		t.Fatalf("parse: %+v, %v", cfg, err)
	}
}

func TestReportOfLocksAndElections(t *testing.T) {
	cfg := config{workloads: []string{"lock", "elect-failover"}, clients: []int{2}, reps: 3}
	var results []bench.Result
	for _, d := range []float64{10500, 9800, 12000} {
		results = append(results,
			bench.Result{System: "etcd", Workload: "lock", Clients: 2, Ops: 10, OpsPerSec: 20, P50Ms: 50, P99Ms: 99},
			bench.Result{System: "etcd", Workload: "elect-failover", Clients: 1, Ops: 1, P50Ms: d, MaxMs: d, SessionTimeoutMs: 10000},
		)
	}
	var b strings.Builder
	if err := writeReport(&b, cfg, []string{"etcd"}, results); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"etcd grants/s",
		"| 2 | 20 | 50.00 | 99.00 | 0 |",
		"| etcd | 10500 | 12000 | 10000 | 3 | 0 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "set, 1 client") {
		t.Errorf("report has a set section without set results:\n%s", out)
	}
}
