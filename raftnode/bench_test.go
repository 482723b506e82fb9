package raftnode_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/raftnode/rafttest"
)

// BenchmarkPropose3 measures committed-and-applied proposals per second on
// a 3-member cluster with real fsyncs (bbolt on t.TempDir) and parallel
// proposers; group commit batches them into few fsyncs.
func BenchmarkPropose3(b *testing.B) {
	c := rafttest.NewCluster(b, 3, rafttest.Options{TickInterval: 50 * time.Millisecond})
	l := c.WaitLeader(10*time.Second, -1)
	node, kv := c.Node(l), c.KV(l)
	start := kv.Len()
	var seq, dropped atomic.Int64
	// Every retry and wait below ends by this deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.SetParallelism(16)
	b.ResetTimer()
	began := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			cmd := fmt.Appendf(nil, "cmd-%d", seq.Add(1))
			for {
				err := node.Propose(ctx, cmd)
				if err == nil {
					break
				}
				if !errors.Is(err, raftnode.ErrProposalDropped) || ctx.Err() != nil {
					b.Error(err)
					return
				}
				dropped.Add(1)
				time.Sleep(time.Millisecond)
			}
		}
	})
	want := start + b.N
	for kv.Len() < want && time.Since(began) < time.Minute {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(began)
	b.StopTimer()
	if got := kv.Len() - start; got < b.N {
		b.Fatalf("applied %d of %d proposals", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(dropped.Load()), "dropped")
}
