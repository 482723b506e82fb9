package server

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/raftnode"
)

// errMetrics is returned when the metrics cannot be registered (a
// programming error: two metrics with one name).
var errMetrics = errors.New("server: register metrics")

// metrics live in a registry of their own per server, never the global
// one, so that several members can run in one process (tests).
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // op, code
	duration  *prometheus.HistogramVec // op
	fsync     prometheus.Histogram
	snapshots prometheus.Counter
	handler   http.Handler

	expired      prometheus.Counter
	renewRounds  *prometheus.CounterVec // result
	reaped       prometheus.Counter
	limits       *prometheus.CounterVec // limit
	backpressure prometheus.Counter

	// Watches.
	watchesSet      *prometheus.CounterVec // kind
	watchEvents     prometheus.Counter
	watchSlowClosed prometheus.Counter
	watchResyncs    prometheus.Counter

	// Locks and elections.
	lockGrants *prometheus.CounterVec // op
}

// latencyBuckets run from 100µs to about 3.3s, doubling.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2, 16)

// newMetrics registers every metric of s. The function metrics read s at
// scrape time, so s.rep may be attached after this.
func newMetrics(s *server) (*metrics, error) {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_requests_total",
			Help: "Requests answered, by op and result code (OK on success).",
		}, []string{"op", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "arbor_request_duration_seconds",
			Help:    "Time from reading a request to writing its response.",
			Buckets: latencyBuckets,
		}, []string{"op"}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "arbor_fsync_duration_seconds",
			Help:    "Duration of each durable raft storage commit.",
			Buckets: latencyBuckets,
		}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "arbor_raft_snapshots_saved_total",
			Help: "Local raft snapshots written.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "arbor_sessions_expired_total",
			Help: "Sessions the cluster expired, as applied by this member.",
		}),
		renewRounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_session_renewal_rounds_total",
			Help: "Batches of session renewals this member sent to the leader, by result (ok, failed).",
		}, []string{"result"}),
		reaped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "arbor_nodes_reaped_total",
			Help: "Container and TTL nodes this member, as leader, had deleted.",
		}),
		limits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_limit_refusals_total",
			Help: "Requests refused for a limit, by limit (sessions, ephemerals).",
		}, []string{"limit"}),
		backpressure: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "arbor_connection_backpressure_total",
			Help: "Times a connection reached its in-flight request limit and was not read until answers went out.",
		}),
	}
	m.watchesSet = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "arbor_watches_set_total",
		Help: "Watches set, by kind (data, exists, children, persistent, recursive).",
	}, []string{"kind"})
	m.watchEvents = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "arbor_watch_events_sent_total",
		Help: "Watch and resync events written to clients.",
	})
	m.watchSlowClosed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "arbor_watch_slow_connections_closed_total",
		Help: "Connections closed because their queued watch events passed the bound.",
	})
	m.watchResyncs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "arbor_watch_resyncs_total",
		Help: "Watches resumed with a since older than the history, answered with a resync.",
	})
	m.lockGrants = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "arbor_lock_grants_total",
		Help: "Locks (op lock) and leaderships (op elect) granted to this member's clients, at once or after waiting.",
	}, []string{"op"})
	watchCollectors := []prometheus.Collector{
		m.watchesSet, m.watchEvents, m.watchSlowClosed, m.watchResyncs, m.lockGrants,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "arbor_lock_waiters", Help: "Lock and elect requests of this member's clients waiting for their grant."},
			func() float64 { return float64(s.sm.count(func(v stateView) int { return v.numWaiters() })) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "arbor_watches", Help: "Watches set on this member."},
			func() float64 { return float64(s.sm.count(func(v stateView) int { return v.numWatches(nil) })) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "arbor_watch_history_events", Help: "Changes held in the watch history."},
			func() float64 { return float64(s.sm.count(func(v stateView) int { return v.historyLen() })) }),
	}
	status := func() raftnode.Status {
		if s.rep == nil {
			return raftnode.Status{}
		}
		return s.rep.Status()
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		m.requests, m.duration, m.fsync, m.snapshots,
		m.expired, m.renewRounds, m.reaped, m.limits, m.backpressure,
		gauge("arbor_sessions_connected", "Sessions with a connection to this member.",
			func() float64 { return float64(s.live.numConns()) }),
		gauge("arbor_cluster_version", "The cluster version: which command kinds members may propose.",
			func() float64 { return float64(s.sm.clusterVersion.Load()) }),
		gauge("arbor_raft_term", "Current raft term.",
			func() float64 { return float64(status().Term) }),
		gauge("arbor_raft_commit_index", "Raft commit index.",
			func() float64 { return float64(status().Commit) }),
		gauge("arbor_applied_index", "Index of the last entry applied to the state machine.",
			func() float64 { return float64(s.sm.appliedIndex()) }),
		gauge("arbor_raft_is_leader", "1 when this member is the raft leader.",
			func() float64 { return boolFloat(status().IsLeader) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "arbor_raft_leader_changes_total",
			Help: "Times a new raft leader became known to this member.",
		}, func() float64 { return float64(status().LeaderChanges) }),
		gauge("arbor_raft_pending_proposals", "Proposals raft has not yet committed.",
			func() float64 { return float64(status().PendingProposals) }),
		gauge("arbor_proposals_in_flight", "Client writes proposed and not yet answered.",
			func() float64 { return float64(len(s.proposals)) }),
		gauge("arbor_nodes", "Nodes in the tree.",
			func() float64 { return float64(s.sm.count(func(v stateView) int { return v.tree().NumNodes() })) }),
		gauge("arbor_sessions", "Sessions in the session table.",
			func() float64 { return float64(s.sm.count(stateView.numSessions)) }),
		gauge("arbor_connections", "Open client connections.",
			func() float64 { return float64(s.conns.Load()) }),
		buildInfoGauge(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	for _, c := range append(cs, watchCollectors...) {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("%w: %w", errMetrics, err)
		}
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{s},
		ErrorHandling: promhttp.ContinueOnError,
	})
	return m, nil
}

// raftMetrics are the hooks raftnode fills. Leader changes are read from
// raftnode's Status instead, so they are not counted twice.
func (m *metrics) raftMetrics() *raftnode.Metrics {
	return &raftnode.Metrics{FsyncSeconds: m.fsync, SnapshotsSaved: m.snapshots}
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
	m.requests.WithLabelValues(op, code).Inc()
	m.duration.WithLabelValues(op).Observe(d.Seconds())
}

// ServeHTTP serves the Prometheus exposition of this server's registry.
func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.handler.ServeHTTP(w, r)
}

// slogPrinter adapts the server's logger to promhttp's error log.
type slogPrinter struct{ s *server }

func (p slogPrinter) Println(v ...any) { p.s.log.Warn("metrics", "err", fmt.Sprint(v...)) }

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Build says what a binary was built from, as runtime/debug.ReadBuildInfo
// tells it: /metrics exports it as arbor_build_info and arbor version
// prints it.
type Build struct {
	// Version is the main module's version: a release tag when installed
	// with go install module@version, "(devel)" when built from a checkout.
	Version string
	// Commit is the VCS revision, with "-modified" when the work tree had
	// changes; "unknown" when the build was not stamped (-buildvcs=false,
	// or no repository around the source).
	Commit string
	// GoVersion is the toolchain that built the binary.
	GoVersion string
}

// BuildInfo returns what this binary was built from.
func BuildInfo() Build {
	b := Build{Version: "unknown", Commit: "unknown", GoVersion: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.GoVersion = bi.GoVersion
	if bi.Main.Version != "" {
		b.Version = bi.Main.Version
	}
	modified := false
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			b.Commit = kv.Value
		case "vcs.modified":
			modified = kv.Value == "true"
		}
	}
	if modified && b.Commit != "unknown" {
		b.Commit += "-modified"
	}
	return b
}

// buildInfoGauge is the constant 1 labelled with BuildInfo, the Prometheus
// convention for build facts (join on it to group series by version).
func buildInfoGauge() prometheus.Collector {
	b := BuildInfo()
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "arbor_build_info",
		Help:        "Always 1; its labels say what this member's binary was built from.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "goversion": b.GoVersion},
	}, func() float64 { return 1 })
}
