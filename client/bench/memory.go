package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
)

// ErrNoMemoryMetric is returned by a probe that found no memory figure.
var ErrNoMemoryMetric = errors.New("bench: no resident memory figure")

// MetricsMemory sums process_resident_memory_bytes over the Prometheus
// text endpoints at urls (one per member).
func MetricsMemory(urls []string) MemoryProbe {
	return func(ctx context.Context) (uint64, error) {
		var sum uint64
		for _, u := range urls {
			v, err := scrapeRSS(ctx, u)
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	}
}

// MetricsLiveHeap sums, over the Prometheus endpoints of Go members at
// urls, the live heap at the last collection as its heap goal tells it:
// go_memstats_next_gc_bytes / (1 + GOGC/100) (go_gc_gogc_percent, 100 if
// missing). It counts what the collector kept, not garbage, so it is
// meaningful right after the member has collected a few times.
func MetricsLiveHeap(urls []string) MemoryProbe {
	return func(ctx context.Context) (uint64, error) {
		var sum float64
		for _, u := range urls {
			v, err := scrapeMetrics(ctx, u, "go_memstats_next_gc_bytes", "go_gc_gogc_percent")
			if err != nil {
				return 0, err
			}
			goal, ok := v["go_memstats_next_gc_bytes"]
			if !ok {
				return 0, fmt.Errorf("%w: %s has no go_memstats_next_gc_bytes", ErrNoMemoryMetric, u)
			}
			gogc, ok := v["go_gc_gogc_percent"]
			if !ok || gogc <= 0 {
				gogc = 100
			}
			sum += goal / (1 + gogc/100)
		}
		return uint64(sum), nil
	}
}

func scrapeRSS(ctx context.Context, url string) (uint64, error) {
	v, err := scrapeMetrics(ctx, url, "process_resident_memory_bytes")
	if err != nil {
		return 0, err
	}
	rss, ok := v["process_resident_memory_bytes"]
	if !ok {
		return 0, fmt.Errorf("%w: %s has no process_resident_memory_bytes", ErrNoMemoryMetric, url)
	}
	return uint64(rss), nil
}

// scrapeMetrics reads the unlabelled samples of the named metrics from a
// Prometheus text endpoint.
func scrapeMetrics(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: metrics %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: metrics %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: metrics %s: status %s", url, resp.Status)
	}
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return nil, fmt.Errorf("bench: metrics %s: %s: %w", url, name, err)
		}
		out[name] = f
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bench: metrics %s: %w", url, err)
	}
	return out, nil
}

// ProcMemory sums the resident memory (VmRSS in /proc/PID/status, Linux)
// of the processes pids returns: for members this machine started.
func ProcMemory(pids func() []int) MemoryProbe {
	return func(context.Context) (uint64, error) {
		var sum uint64
		for _, pid := range pids() {
			v, err := procRSS(pid)
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	}
}

func procRSS(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: memory of pid %d: %w", pid, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("%w: pid %d", ErrNoMemoryMetric, pid)
}
