package server

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// A minimal Prometheus text-format (0.0.4) exporter. client_golang's
// transitive modules are not in go.sum, so the server writes the format
// itself; the metric names and types are what client_golang would expose.

// counter is a monotonically increasing count.
type counter struct{ n atomic.Uint64 }

func (c *counter) Inc() { c.n.Add(1) }

// histogram counts observations into fixed buckets.
type histogram struct {
	bounds []float64
	counts []atomic.Uint64 // per bucket, not cumulative; last is +Inf
	count  atomic.Uint64
	sumBit atomic.Uint64 // float64 bits
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe records v.
func (h *histogram) Observe(v float64) {
	i, _ := slices.BinarySearch(h.bounds, v)
	h.counts[i].Add(1)
	h.count.Add(1)
	for {
		old := h.sumBit.Load()
		if h.sumBit.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (h *histogram) write(w io.Writer, name, labels string) {
	var cum uint64
	sep := ""
	if labels != "" {
		sep = ","
	}
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		fmt.Fprintf(w, "%s_bucket{%s%sle=%q} %d\n", name, labels, sep, strconv.FormatFloat(b, 'g', -1, 64), cum)
	}
	cum += h.counts[len(h.bounds)].Load()
	fmt.Fprintf(w, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, cum)
	fmt.Fprintf(w, "%s_sum%s %s\n", name, braces(labels), strconv.FormatFloat(math.Float64frombits(h.sumBit.Load()), 'g', -1, 64))
	fmt.Fprintf(w, "%s_count%s %d\n", name, braces(labels), h.count.Load())
}

func braces(labels string) string {
	if labels == "" {
		return ""
	}
	return "{" + labels + "}"
}

// exponentialBuckets returns n bounds from start, each factor times the last.
func exponentialBuckets(start, factor float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

// labelled is a family of series keyed by their label values.
type labelled[T any] struct {
	names []string
	mk    func() *T
	mu    sync.Mutex
	m     map[string]*T // key: rendered labels
}

func newLabelled[T any](mk func() *T, names ...string) *labelled[T] {
	return &labelled[T]{names: names, mk: mk, m: make(map[string]*T)}
}

// with returns the series for the label values, creating it.
func (l *labelled[T]) with(values ...string) *T {
	var sb strings.Builder
	for i, n := range l.names {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "%s=%q", n, values[i])
	}
	key := sb.String()
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.m[key]
	if !ok {
		t = l.mk()
		l.m[key] = t
	}
	return t
}

// each calls fn for every series in label order.
func (l *labelled[T]) each(fn func(labels string, t *T)) {
	l.mu.Lock()
	keys := make([]string, 0, len(l.m))
	for k := range l.m {
		keys = append(keys, k)
	}
	series := make(map[string]*T, len(l.m))
	for k, v := range l.m {
		series[k] = v
	}
	l.mu.Unlock()
	slices.Sort(keys)
	for _, k := range keys {
		fn(k, series[k])
	}
}

// writeHeader writes the HELP and TYPE lines of a metric.
func writeHeader(w io.Writer, name, typ, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// writeValue writes an unlabelled sample.
func writeValue(w io.Writer, name, typ, help string, v float64) {
	writeHeader(w, name, typ, help)
	fmt.Fprintf(w, "%s %s\n", name, strconv.FormatFloat(v, 'g', -1, 64))
}
