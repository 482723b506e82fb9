package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// Session limits answer with a clear error, counted in a metric; the
// session metrics move.
func TestSessionLimitsAndMetrics(t *testing.T) {
	ts := startFake(t, func(cfg *Config) {
		cfg.MaxSessions = 1
		cfg.MaxEphemeralsPerSession = 2
	})
	waitReady(t, ts.addr)
	c := helloed(t, ts.addr)
	r := dial(t, ts.addr).call(`{"id":1,"op":"hello"}`)
	if r.Error == nil || r.Error.Code != wire.CodeUnavailable || !strings.Contains(r.Error.Message, "--max-sessions") {
		t.Fatalf("a second session over --max-sessions 1: %+v", r)
	}
	for i, p := range []string{"/e1", "/e2"} {
		if r := c.call(fmt.Sprintf(`{"id":%d,"op":"create","ephemeral":true,"path":%q}`, 2+i, p)); !r.OK {
			t.Fatalf("ephemeral %s: %+v", p, r.Error)
		}
	}
	r = c.call(`{"id":5,"op":"multi","ops":[{"op":"create","path":"/p"},{"op":"create","path":"/e3","ephemeral":true}]}`)
	if r.Error == nil || r.Error.Code != wire.CodeTooLarge || !strings.Contains(r.Error.Message, "limit of 2 per session") {
		t.Fatalf("a third ephemeral over the limit of 2: %+v", r)
	}
	if r := c.call(`{"id":6,"op":"create","path":"/persistent"}`); !r.OK {
		t.Fatalf("a persistent create is not limited: %+v", r.Error)
	}
	var m = scrape(t, ts.addr)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		m = scrape(t, ts.addr)
		if v, _ := sample(m, "arbor_session_renewal_rounds_total", "result=ok"); v > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no renewal round counted")
		}
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"arbor_sessions_connected", nil, 1},
		{"arbor_cluster_version", nil, currentClusterVersion},
		{"arbor_limit_refusals_total", []string{"limit=sessions"}, 1},
		{"arbor_limit_refusals_total", []string{"limit=ephemerals"}, 1},
		{"arbor_sessions_expired_total", nil, 0},
		{"arbor_nodes_reaped_total", nil, 0},
		{"arbor_connection_backpressure_total", nil, 0},
	}
	for _, ck := range checks {
		if got := mustSample(t, m, ck.name, ck.labels...); got != ck.want {
			t.Errorf("%s%v = %v, want %v", ck.name, ck.labels, got, ck.want)
		}
	}
}
