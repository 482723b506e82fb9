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
	watchers         int    // watch workloads; 0 otherwise
	mode             string // watch and watch-memory
}

// cell is the repetitions of one system, workload and client count.
type cell struct {
	opsPerSec, p50, p99, max []float64
	errors                   int64
	sessionTimeoutMs         float64 // elect-failover
	// watch: p99 from the write's request, writes a second, the fraction
	// of the expected events delivered
	p99FromWrite, writesPerSec, delivered []float64
	// watch-memory: bytes per watch, and the paths' length
	heapPerWatch, rssPerWatch []float64
	pathBytes                 int
}

func group(results []bench.Result) map[cellKey]*cell {
	cells := map[cellKey]*cell{}
	for _, r := range results {
		k := cellKey{r.System, r.Workload, r.Clients, r.Watchers, r.WatchMode}
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
		c.p99FromWrite = append(c.p99FromWrite, r.P99FromWriteMs)
		if r.ElapsedSec > 0 {
			c.writesPerSec = append(c.writesPerSec, float64(r.Writes)/r.ElapsedSec)
		}
		if r.EventsExpected > 0 {
			c.delivered = append(c.delivered, float64(r.EventsDelivered)/float64(r.EventsExpected))
		}
		if r.Watchers > 0 && r.HeapAfterBytes > 0 {
			c.heapPerWatch = append(c.heapPerWatch, (float64(r.HeapAfterBytes)-float64(r.HeapBeforeBytes))/float64(r.Watchers))
		}
		if r.Watchers > 0 && r.MemAfterBytes > 0 {
			c.rssPerWatch = append(c.rssPerWatch, (float64(r.MemAfterBytes)-float64(r.MemBeforeBytes))/float64(r.Watchers))
		}
		c.pathBytes = r.PathBytes
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
		switch wl {
		case "elect-failover":
			writeElectFailover(&b, active, cells)
			continue
		case "watch":
			writeWatch(&b, cfg, active, cells)
			continue
		case "watch-memory":
			writeWatchMemory(&b, cfg, active, cells)
			continue
		case "set-watched":
			writeSetWatched(&b, cfg, active, cells)
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
				cl := cells[cellKey{system: s, workload: wl, clients: c}]
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
	if slices.Contains(cfg.workloads, "set") && slices.Contains(cfg.clients, 1) {
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
		cl := cells[cellKey{system: s, workload: "elect-failover", clients: 1}]
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
		if cl := cells[cellKey{system: s, workload: "set", clients: 1}]; cl != nil && len(cl.p50) > 0 {
			fmt.Fprintf(b, " %.2f |", median(cl.p50))
		} else {
			b.WriteString(" – |")
		}
	}
	b.WriteString("\n\nZooKeeper's get-linearizable is sync + read, its closest equivalent " +
		"(a sync is not a quorum read); etcd's get-local is a serializable read, and its set " +
		"a plain put (no existence check).\n")
}

// writeWatch writes a row per watcher count, session count, system and
// watch mode that ran: the notification latency and the share of the
// expected events delivered.
func writeWatch(b *strings.Builder, cfg config, active []string, cells map[cellKey]*cell) {
	fmt.Fprintf(b, "## watch: notification latency, one node written at %.0f/s\n\n", cfg.opts.Rate)
	b.WriteString("Latency from the write's acknowledgement to each watcher's event (an event before the ack counts as 0), " +
		"and from the write's request; delivered: events received of writes times watchers.\n\n" +
		"| watchers | sessions | system | mode | writes/s | p50 ms | p99 ms | p99 from request ms | delivered | errors |\n" +
		"|---:|---:|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, w := range cfg.watchers {
		for _, c := range cfg.clients {
			for _, s := range active {
				for _, m := range cfg.watchModes {
					cl := cells[cellKey{s, "watch", min(c, w), w, m}]
					if cl == nil {
						continue
					}
					if len(cl.p50) == 0 {
						fmt.Fprintf(b, "| %d | %d | %s | %s | – | – | – | – | – | %d |\n", w, min(c, w), s, m, cl.errors)
						continue
					}
					fmt.Fprintf(b, "| %d | %d | %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f%% | %d |\n", w, min(c, w), s, m,
						median(cl.writesPerSec), median(cl.p50), median(cl.p99), median(cl.p99FromWrite), 100*median(cl.delivered), cl.errors)
				}
			}
		}
	}
	b.WriteString("\n")
}

// writeWatchMemory writes a row per system and mode: the members' memory
// added per watch.
func writeWatchMemory(b *strings.Builder, cfg config, active []string, cells map[cellKey]*cell) {
	b.WriteString("## watch-memory: member memory per watch\n\n" +
		"Summed over the members, after against before setting the watches (each on its own node, created before). " +
		"Heap: Go members' live heap (heap goal / 2, after reads that make them collect); ZooKeeper's used heap after a full GC (jcmd).\n\n" +
		"| watches | sessions | system | mode | heap B/watch | beyond the path | RSS B/watch | path bytes | errors |\n" +
		"|---:|---:|---|---|---:|---:|---:|---:|---:|\n")
	for _, w := range cfg.watchers {
		for _, c := range cfg.clients {
			for _, s := range active {
				for _, m := range cfg.watchModes {
					cl := cells[cellKey{s, "watch-memory", c, w, m}]
					if cl == nil {
						continue
					}
					heap, beyond, rss := "–", "–", "–"
					if len(cl.heapPerWatch) > 0 {
						h := median(cl.heapPerWatch)
						heap, beyond = fmt.Sprintf("%.0f", h), fmt.Sprintf("%.0f", h-float64(cl.pathBytes))
					}
					if len(cl.rssPerWatch) > 0 {
						rss = fmt.Sprintf("%.0f", median(cl.rssPerWatch))
					}
					fmt.Fprintf(b, "| %d | %d | %s | %s | %s | %s | %s | %d | %d |\n", w, c, s, m, heap, beyond, rss, cl.pathBytes, cl.errors)
				}
			}
		}
	}
	b.WriteString("\n")
}

// writeSetWatched writes set's and set-watched's throughput side by side
// per client count and system.
func writeSetWatched(b *strings.Builder, cfg config, active []string, cells map[cellKey]*cell) {
	w := cfg.watchers[0]
	fmt.Fprintf(b, "## set-watched: set with %d recursive watches of / against set without\n\n", w)
	b.WriteString("| clients | system | set ops/s | set-watched ops/s | change | set-watched p99 ms | events delivered | errors |\n" +
		"|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range cfg.clients {
		for _, s := range active {
			plain, watched := cells[cellKey{system: s, workload: "set", clients: c}], cells[cellKey{s, "set-watched", c, w, ""}]
			if watched == nil {
				continue
			}
			base, with, change := "–", "–", "–"
			if plain != nil && len(plain.opsPerSec) > 0 {
				base = fmt.Sprintf("%.0f", median(plain.opsPerSec))
			}
			if len(watched.opsPerSec) > 0 {
				with = fmt.Sprintf("%.0f", median(watched.opsPerSec))
				if plain != nil && len(plain.opsPerSec) > 0 {
					change = fmt.Sprintf("%+.0f%%", 100*(median(watched.opsPerSec)/median(plain.opsPerSec)-1))
				}
			}
			p99, deliv := "–", "–"
			if len(watched.p99) > 0 {
				p99 = fmt.Sprintf("%.2f", median(watched.p99))
			}
			if len(watched.delivered) > 0 {
				deliv = fmt.Sprintf("%.2f%%", 100*median(watched.delivered))
			}
			fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %s | %s | %d |\n", c, s, base, with, change, p99, deliv, watched.errors)
		}
	}
	b.WriteString("\n")
}
