package bench_test

import (
	"log/slog"
	"testing"

	"github.com/arbor-db/arbor/client/bench"
	"github.com/arbor-db/arbor/server/servertest"
)

// Each workload against an in-process 3-member cluster, briefly: the
// store mapping and the checks hold against the real thing.
func TestWorkloadsAgainstArbor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an in-process cluster")
	}
	c := servertest.NewCluster(t, 3)
	for _, tt := range []struct {
		workload string
		opts     bench.Options
		want     int64
	}{
		{"create", bench.Options{Clients: 4, Ops: 40}, 40},
		{"set", bench.Options{Clients: 4, Ops: 40, Keys: 8}, 40},
		{"get-linearizable", bench.Options{Clients: 2, Ops: 40, Keys: 8}, 40},
		{"get-local", bench.Options{Clients: 2, Ops: 40, Keys: 8}, 40},
		{"multi", bench.Options{Clients: 2, Ops: 20, Keys: 8}, 20},
		{"sessions", bench.Options{Clients: 4, Sessions: 20}, 20},
		{"lock", bench.Options{Clients: 4, Ops: 60}, 60},
		{"watch", bench.Options{Clients: 3, Watchers: 9, Ops: 30, Rate: 500}, 270},
		{"watch", bench.Options{Clients: 3, Watchers: 9, Ops: 30, WatchMode: bench.WatchOneShot}, -1},
		{"set-watched", bench.Options{Clients: 2, Ops: 40, Keys: 8, Watchers: 4, WatchSessions: 2}, 40},
		{"watch-memory", bench.Options{Clients: 3, Watchers: 60}, 60},
	} {
		t.Run(tt.workload+"/"+tt.opts.WatchMode, func(t *testing.T) {
			env := &bench.Env{
				System:    "arbor",
				Endpoints: c.Addrs(),
				DialAt:    bench.ArborDialer(slog.New(slog.DiscardHandler)),
				Options:   tt.opts,
			}
			res, err := bench.Run(t.Context(), tt.workload, env)
			if err != nil {
				t.Fatal(err)
			}
			// -1: a one-shot watch's events are however many it caught.
			if tt.want >= 0 && res.Ops != tt.want || res.Errors != 0 {
				t.Fatalf("%d ops, %d errors (first: %s); want %d ops, no errors", res.Ops, res.Errors, res.FirstError, tt.want)
			}
		})
	}
}
