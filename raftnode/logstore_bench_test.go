package raftnode

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRestartLargeLog measures how long a member takes from New to
// having replayed a large log (ARBOR_BENCH_LOG_MB MiB of 64 KiB entries,
// default 256), and the most heap it used meanwhile, with the default
// 64 MiB log cache. Run it with -benchtime=1x.
func BenchmarkRestartLargeLog(b *testing.B) {
	mb := 256
	if v, err := strconv.Atoi(os.Getenv("ARBOR_BENCH_LOG_MB")); err == nil && v > 0 {
		mb = v
	}
	dir := b.TempDir()
	cfg := Config{Name: "solo", DataDir: dir, NoSync: true, TickInterval: 10 * time.Millisecond,
		SnapshotEntries: 1 << 40, SnapshotBytes: 1 << 62}
	last := buildLargeLog(b, cfg, mb)
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak atomic.Uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak.Store(max(peak.Load(), ms.HeapInuse))
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		start := time.Now()
		sm := &countSM{}
		n, err := New(cfg, sm)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		for deadline := time.Now().Add(10 * time.Minute); sm.applied.Load() < last; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("replayed %d of %d entries", sm.applied.Load(), last)
			}
		}
		elapsed := time.Since(start)
		rssAnon := procStatusKB("RssAnon:")
		cachePeak := n.store.cachePeak.Load()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		close(stop)
		<-sampled
		b.ReportMetric(elapsed.Seconds(), "startup-s")
		b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapInuse))/(1<<20), "heap-peak-MiB")
		b.ReportMetric(float64(rssAnon)/1024, "rss-anon-MiB")
		b.ReportMetric(float64(cachePeak)/(1<<20), "cache-peak-MiB")
		b.ReportMetric(float64(mb), "log-MiB")
	}
}

// buildLargeLog bootstraps a single member in cfg.DataDir, then appends
// mb MiB of committed 64 KiB entries to its raft.db as a leader's appends
// would, and returns the last index.
func buildLargeLog(b *testing.B, cfg Config, mb int) uint64 {
	sm := &countSM{}
	n, err := New(cfg, sm)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); !n.Status().IsLeader; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("no leader")
		}
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	disk, err := openDiskStorage(cfg.DataDir, true, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer disk.close()
	p, err := disk.load()
	if err != nil {
		b.Fatal(err)
	}
	hs, next := p.hardState, p.last+1
	data := bytes.Repeat([]byte{'v'}, 64<<10)
	for written := 0; written < mb<<20; written += 16 * len(data) {
		batch := make([]logEntry, 16)
		for i := range batch {
			batch[i] = logEntry{Term: hs.Term, Index: next, Data: data}
			next++
		}
		hs.Commit = next - 1
		if err := disk.save(hs, batch, nil); err != nil {
			b.Fatal(err)
		}
	}
	return next - 1
}

// procStatusKB reads a kB field of /proc/self/status (0 if unavailable).
func procStatusKB(field string) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			v, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return v
		}
	}
	return 0
}
