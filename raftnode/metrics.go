package raftnode

// Observer is satisfied by prometheus.Observer (a histogram or summary).
type Observer interface{ Observe(float64) }

// Counter is satisfied by prometheus.Counter.
type Counter interface{ Inc() }

// Metrics are optional hooks; a nil field is skipped. The small interfaces
// keep the prometheus dependency out of raftnode.
type Metrics struct {
	FsyncSeconds   Observer // duration of each durable log write (WAL append and fdatasync) and bbolt commit
	LeaderChanges  Counter  // a new leader became known
	SnapshotsSaved Counter  // a local snapshot file was written
}

func (m *Metrics) incLeaderChanges() {
	if m != nil && m.LeaderChanges != nil {
		m.LeaderChanges.Inc()
	}
}

func (m *Metrics) incSnapshotsSaved() {
	if m != nil && m.SnapshotsSaved != nil {
		m.SnapshotsSaved.Inc()
	}
}
