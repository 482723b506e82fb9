// Package storetest runs every workload of client/bench against a live
// cluster through a bench.Store, so each peer's store is checked the same
// way. Its tests run only with ARBOR_BENCH_PEERS=1 (the clusters come from
// bench/scripts).
package storetest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/arbor-db/arbor/client/bench"
)

// Run runs every workload briefly against system's cluster at endpoints
// (overridden by the environment variable envVar) and requires exact op
// counts and no errors.
func Run(t *testing.T, system, endpoints, envVar string, dial func(ctx context.Context, endpoints []string) (bench.Store, error)) {
	if os.Getenv("ARBOR_BENCH_PEERS") != "1" {
		t.Skip("needs a running cluster: set ARBOR_BENCH_PEERS=1")
	}
	if v := os.Getenv(envVar); v != "" {
		endpoints = v
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
		{"lock", bench.Options{Clients: 4, Ops: 100}, 100},
		// Each system runs the watch modes it has; watch's ops are events.
		{"watch", bench.Options{Clients: 3, Watchers: 6, Ops: 50, WatchMode: bench.WatchPersistent}, 300},
		{"watch", bench.Options{Clients: 3, Watchers: 6, Ops: 50, WatchMode: bench.WatchOneShot}, -1},
		{"set-watched", bench.Options{Clients: 2, Ops: 50, Keys: 16, Watchers: 4, WatchSessions: 2}, 50},
		{"watch-memory", bench.Options{Clients: 3, Watchers: 300}, 300},
	} {
		t.Run(tt.workload+"/"+tt.opts.WatchMode, func(t *testing.T) {
			env := &bench.Env{System: system, Endpoints: strings.Split(endpoints, ","), DialAt: dial, Options: tt.opts}
			res, err := bench.Run(t.Context(), tt.workload, env)
			if errors.Is(err, bench.ErrUnsupported) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			// -1: a one-shot watch's events are however many it caught.
			if tt.want >= 0 && res.Ops != tt.want || res.Errors != 0 {
				t.Fatalf("%d ops, %d errors (first: %s); want %d ops, no errors", res.Ops, res.Errors, res.FirstError, tt.want)
			}
			t.Logf("%s: %.0f ops/s, p50 %.2f ms, p99 %.2f ms", tt.workload, res.OpsPerSec, res.P50Ms, res.P99Ms)
		})
	}
}
