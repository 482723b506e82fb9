package server

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches /metrics and parses it as Prometheus does.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// sample returns the value of the series of family name whose labels
// include every pair of labels ("k=v"), and whether it exists. Histograms
// give their sample count.
func sample(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func mustSample(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	v, ok := sample(mfs, name, labels...)
	if !ok {
		t.Fatalf("metric %s%v is not exported", name, labels)
	}
	return v
}

func TestMetricsMove(t *testing.T) {
	ts := startFake(t, nil)
	// Ready means the member's own writes (its attributes) are done, so
	// they do not move the counts under the test.
	waitReady(t, ts.addr)
	c := helloed(t, ts.addr)
	before := scrape(t, ts.addr)
	nodes0 := mustSample(t, before, "arbor_nodes")
	applied0 := mustSample(t, before, "arbor_applied_index")
	if v, _ := sample(before, "arbor_requests_total", "op=create", "code=OK"); v != 0 {
		t.Fatalf("creates counted before any: %v", v)
	}

	const n = 7
	for i := range n {
		if r := c.call(fmt.Sprintf(`{"id":%d,"op":"create","path":"/m%d"}`, 10+i, i)); !r.OK {
			t.Fatalf("create: %+v", r.Error)
		}
	}
	if r := c.call(`{"id":30,"op":"get","path":"/nope"}`); r.Error == nil {
		t.Fatal("get of a missing node succeeded")
	}
	c.mustAnswer()
	// The raftnode hook feeds the fsync histogram.
	ts.srv.metrics.raftMetrics().FsyncSeconds.Observe(0.002)

	after := scrape(t, ts.addr)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"arbor_requests_total", []string{"op=create", "code=OK"}, n},
		{"arbor_requests_total", []string{"op=get", "code=NO_NODE"}, 1},
		{"arbor_requests_total", []string{"op=hello", "code=OK"}, 1},
		{"arbor_request_duration_seconds", []string{"op=create"}, n},
		{"arbor_nodes", nil, nodes0 + n},
		{"arbor_connections", nil, 1},
		{"arbor_sessions", nil, 1},
		{"arbor_raft_term", nil, 1},
		{"arbor_raft_is_leader", nil, 1},
		{"arbor_fsync_duration_seconds", nil, 1},
	}
	for _, ck := range checks {
		if got := mustSample(t, after, ck.name, ck.labels...); got != ck.want {
			t.Errorf("%s%v = %v, want %v", ck.name, ck.labels, got, ck.want)
		}
	}
	if got := mustSample(t, after, "arbor_applied_index"); got < applied0+n {
		t.Errorf("arbor_applied_index %v, want at least %v", got, applied0+n)
	}
	if got := mustSample(t, after, "arbor_raft_commit_index"); got < applied0+n {
		t.Errorf("arbor_raft_commit_index %v, want at least %v", got, applied0+n)
	}
	for _, name := range []string{
		"arbor_raft_leader_changes_total", "arbor_raft_snapshots_saved_total",
		"arbor_raft_pending_proposals", "arbor_proposals_in_flight", "go_goroutines",
	} {
		mustSample(t, after, name)
	}
	// The benchmark harness reads the resident set size.
	if rss := mustSample(t, after, "process_resident_memory_bytes"); rss <= 0 {
		t.Errorf("process_resident_memory_bytes %v", rss)
	}
}

// arbor_build_info is 1, labelled with what the binary was built from.
func TestMetricsBuildInfo(t *testing.T) {
	ts := startFake(t, nil)
	b := BuildInfo()
	if b.GoVersion != runtime.Version() {
		t.Errorf("BuildInfo().GoVersion = %q, want %q", b.GoVersion, runtime.Version())
	}
	got, ok := sample(scrape(t, ts.addr), "arbor_build_info",
		"version="+b.Version, "commit="+b.Commit, "goversion="+b.GoVersion)
	if !ok || got != 1 {
		t.Fatalf("arbor_build_info{version=%q,commit=%q,goversion=%q} = %v (exported: %v), want 1",
			b.Version, b.Commit, b.GoVersion, got, ok)
	}
}

// Two servers in one process each have their own registry.
func TestMetricsPerServer(t *testing.T) {
	a, b := startFake(t, nil), startFake(t, nil)
	helloed(t, a.addr).mustAnswer()
	if got := mustSample(t, scrape(t, a.addr), "arbor_connections"); got != 1 {
		t.Errorf("a: arbor_connections %v, want 1", got)
	}
	if got, _ := sample(scrape(t, b.addr), "arbor_requests_total", "op=ping"); got != 0 {
		t.Errorf("b counts a's ping: %v", got)
	}
}
