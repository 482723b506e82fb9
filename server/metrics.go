package server

import (
	"bufio"
	"net/http"
	"strconv"
	"time"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/raftnode"
)

// metrics are per server (not process-global), so that several servers can
// run in one process (tests).
type metrics struct {
	srv       *server
	requests  *labelled[counter]   // op, code
	duration  *labelled[histogram] // op
	fsync     *histogram
	leaders   counter
	snapshots counter
}

var latencyBuckets = exponentialBuckets(0.0001, 2, 16) // 100µs .. ~3.3s

func newMetrics(s *server) *metrics {
	return &metrics{
		srv:      s,
		requests: newLabelled(func() *counter { return new(counter) }, "op", "code"),
		duration: newLabelled(func() *histogram { return newHistogram(latencyBuckets) }, "op"),
		fsync:    newHistogram(latencyBuckets),
	}
}

// raftMetrics are the hooks raftnode fills.
func (m *metrics) raftMetrics() *raftnode.Metrics {
	return &raftnode.Metrics{FsyncSeconds: m.fsync, LeaderChanges: &m.leaders, SnapshotsSaved: &m.snapshots}
}

// observe counts one answered request.
func (m *metrics) observe(op string, resp *wire.Response, d time.Duration) {
	if op == "" {
		op = "invalid"
	}
	code := "OK"
	if resp.Error != nil {
		code = string(resp.Error.Code)
	}
	m.requests.with(op, code).Inc()
	m.duration.with(op).Observe(d.Seconds())
}

// ServeHTTP writes every metric in the Prometheus text format.
func (m *metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	s := m.srv

	writeHeader(bw, "arbor_requests_total", "counter", "Requests answered, by op and result code (OK on success).")
	m.requests.each(func(labels string, c *counter) {
		bw.WriteString("arbor_requests_total{" + labels + "} ")
		bw.WriteString(formatUint(c.n.Load()) + "\n")
	})
	writeHeader(bw, "arbor_request_duration_seconds", "histogram", "Time from reading a request to writing its response.")
	m.duration.each(func(labels string, h *histogram) { h.write(bw, "arbor_request_duration_seconds", labels) })
	writeHeader(bw, "arbor_fsync_duration_seconds", "histogram", "Duration of each durable raft storage commit.")
	m.fsync.write(bw, "arbor_fsync_duration_seconds", "")

	st := s.rep.Status()
	writeValue(bw, "arbor_raft_term", "gauge", "Current raft term.", float64(st.Term))
	writeValue(bw, "arbor_raft_commit_index", "gauge", "Raft commit index.", float64(st.Commit))
	writeValue(bw, "arbor_applied_index", "gauge", "Index of the last entry applied to the state machine.", float64(s.sm.appliedIndex()))
	writeValue(bw, "arbor_raft_is_leader", "gauge", "1 when this member is the raft leader.", float64(boolUint(st.IsLeader)))
	writeValue(bw, "arbor_raft_leader_changes_total", "counter", "Times a new raft leader became known to this member.", float64(m.leaders.n.Load()))
	writeValue(bw, "arbor_raft_snapshots_saved_total", "counter", "Local raft snapshots written.", float64(m.snapshots.n.Load()))
	writeValue(bw, "arbor_raft_pending_proposals", "gauge", "Proposals raft has not yet committed.", float64(st.PendingProposals))
	writeValue(bw, "arbor_proposals_in_flight", "gauge", "Client writes proposed and not yet answered.", float64(len(s.proposals)))
	writeValue(bw, "arbor_nodes", "gauge", "Nodes in the tree.", float64(s.sm.numNodes()))
	writeValue(bw, "arbor_sessions", "gauge", "Sessions in the session table.", float64(s.sm.numSessions()))
	writeValue(bw, "arbor_connections", "gauge", "Open client connections.", float64(s.conns.Load()))
}

func formatUint(v uint64) string { return strconv.FormatUint(v, 10) }

func boolUint(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
