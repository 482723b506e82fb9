package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/arbor-db/arbor/client/bench"
)

// median of xs (the mean of the middle two for an even count); 0 if empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

type cellKey struct {
	system, workload string
	clients          int
}

// cell is the repetitions of one system, workload and client count.
type cell struct {
	opsPerSec, p50, p99, max []float64
	errors                   int64
	sessionTimeoutMs         float64 // elect-failover
}

func group(results []bench.Result) map[cellKey]*cell {
	cells := map[cellKey]*cell{}
	for _, r := range results {
		k := cellKey{r.System, r.Workload, r.Clients}
		c := cells[k]
		if c == nil {
			c = &cell{}
			cells[k] = c
		}
		c.errors += r.Errors
		if r.Ops == 0 {
			continue // a failed cell has no figures to take a median of
		}
		c.opsPerSec = append(c.opsPerSec, r.OpsPerSec)
		c.p50 = append(c.p50, r.P50Ms)
		c.p99 = append(c.p99, r.P99Ms)
		c.max = append(c.max, r.MaxMs)
		c.sessionTimeoutMs = max(c.sessionTimeoutMs, r.SessionTimeoutMs)
	}
	return cells
}

// writeReport writes one table per workload: a row per client count, and
// for each system the medians over the repetitions of ops/s, p50 and p99,
// then the set p50 with one client, then how the run was made.
func writeReport(w io.Writer, cfg config, active []string, results []bench.Result) error {
	cells := group(results)
	var b strings.Builder
	b.WriteString("# Arbor, ZooKeeper and etcd: benchmark results\n\n")
	if cfg.note != "" {
		b.WriteString(cfg.note + "\n\n")
	}
	fmt.Fprintf(&b, "Medians of %d repetitions of %s per cell; value size %d bytes, %d keys. "+
		"3-member clusters on one machine (loopback), fsync on. "+
		"Errors are the sum over the repetitions (failed operations and failed checks).\n\n",
		cfg.reps, cfg.opts.Duration, cfg.opts.ValueSize, cfg.opts.Keys)
	for _, wl := range cfg.workloads {
		if wl == "elect-failover" {
			writeElectFailover(&b, active, cells)
			continue
		}
		rate := "ops/s"
		if wl == "lock" {
			rate = "grants/s"
		}
		fmt.Fprintf(&b, "## %s\n\n| clients |", wl)
		for _, s := range active {
			fmt.Fprintf(&b, " %s %s | %s p50 ms | %s p99 ms | %s errors |", s, rate, s, s, s)
		}
		b.WriteString("\n|---:|" + strings.Repeat("---:|", 4*len(active)) + "\n")
		for _, c := range cfg.clients {
			fmt.Fprintf(&b, "| %d |", c)
			for _, s := range active {
				cl := cells[cellKey{s, wl, c}]
				if cl == nil || len(cl.opsPerSec) == 0 {
					errs := int64(0)
					if cl != nil {
						errs = cl.errors
					}
					fmt.Fprintf(&b, " – | – | – | %d |", errs)
					continue
				}
				fmt.Fprintf(&b, " %.0f | %.2f | %.2f | %d |", median(cl.opsPerSec), median(cl.p50), median(cl.p99), cl.errors)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	if slices.Contains(cfg.workloads, "set") {
		writeSetLatency(&b, active, cells)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeElectFailover writes a row per system: the time from kill -9 of the
// leading candidate's process to the next election, with the session
// timeout that bounds it.
func writeElectFailover(b *strings.Builder, active []string, cells map[cellKey]*cell) {
	b.WriteString("## elect-failover: kill -9 of the leader's process to the next election\n\n" +
		"| system | median ms | max ms | session timeout ms | rounds | errors |\n|---|---:|---:|---:|---:|---:|\n")
	for _, s := range active {
		cl := cells[cellKey{s, "elect-failover", 1}]
		if cl == nil || len(cl.p50) == 0 {
			errs := int64(0)
			if cl != nil {
				errs = cl.errors
			}
			fmt.Fprintf(b, "| %s | – | – | – | 0 | %d |\n", s, errs)
			continue
		}
		fmt.Fprintf(b, "| %s | %.0f | %.0f | %.0f | %d | %d |\n", s, median(cl.p50), slices.Max(cl.max), cl.sessionTimeoutMs, len(cl.p50), cl.errors)
	}
	b.WriteString("\n")
}

// writeSetLatency writes the set p50 with one client, and the caveats.
func writeSetLatency(b *strings.Builder, active []string, cells map[cellKey]*cell) {
	b.WriteString("## Write latency: set, 1 client, p50 ms\n\n|")
	for _, s := range active {
		fmt.Fprintf(b, " %s |", s)
	}
	b.WriteString("\n|" + strings.Repeat("---:|", len(active)) + "\n|")
	for _, s := range active {
		if cl := cells[cellKey{s, "set", 1}]; cl != nil && len(cl.p50) > 0 {
			fmt.Fprintf(b, " %.2f |", median(cl.p50))
		} else {
			b.WriteString(" – |")
		}
	}
	b.WriteString("\n\nZooKeeper's get-linearizable is sync + read, its closest equivalent " +
		"(a sync is not a quorum read); etcd's get-local is a serializable read, and its set " +
		"a plain put (no existence check).\n")
}
