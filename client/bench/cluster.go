package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/arbor-db/arbor/arbortest/proc"
)

// ErrClusterStart is returned when a local cluster does not come up.
var ErrClusterStart = errors.New("bench: local cluster did not start")

// How long a local cluster's members have to become ready and to find a
// leader, and how long a SIGTERM'd member has to exit.
const (
	localReady  = time.Minute
	localLeader = 30 * time.Second
	localStop   = 10 * time.Second
)

// LocalCluster is an Arbor cluster of `arbor server` processes on loopback
// that this process started, for failover (and for benchmarking without a
// cluster at hand). Members log to DIR/NAME.log.
type LocalCluster struct {
	c   *proc.Cluster
	log *slog.Logger
}

var _ Cluster = (*LocalCluster)(nil)

// StartLocalCluster starts n members of binary (an arbor executable) with
// data under dir and waits until every member is ready. A start that fails
// on a port taken between its pick and its bind is tried again on new
// ports (package arbortest/proc).
func StartLocalCluster(ctx context.Context, binary, dir string, n int, logger *slog.Logger) (*LocalCluster, error) {
	c, err := proc.StartCluster(ctx, proc.Options{Binary: binary, Dir: dir, N: n, ReadyWithin: localReady, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClusterStart, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &LocalCluster{c: c, log: logger}, nil
}

// index returns the index of member name, or an error.
func (lc *LocalCluster) index(name string) (int, error) {
	if i := lc.c.Index(name); i >= 0 {
		return i, nil
	}
	return -1, fmt.Errorf("bench: no member %q", name)
}

// Members returns the member names.
func (lc *LocalCluster) Members() []string {
	var names []string
	for _, m := range lc.c.Members {
		names = append(names, m.Name)
	}
	return names
}

// Endpoint returns a member's client address.
func (lc *LocalCluster) Endpoint(name string) string {
	if i := lc.c.Index(name); i >= 0 {
		return lc.c.Members[i].ClientAddr
	}
	return ""
}

// Endpoints returns every member's client address.
func (lc *LocalCluster) Endpoints() []string { return lc.c.Endpoints(-1) }

// PIDs returns the process ids of the running members.
func (lc *LocalCluster) PIDs() []int {
	var pids []int
	for _, m := range lc.c.Members {
		if pid := m.PID(); pid != 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Leader returns the member that a majority of the voters names as leader,
// polling for up to 30s while there is none.
func (lc *LocalCluster) Leader(ctx context.Context) (string, error) {
	l, err := lc.c.WaitLeader(ctx, localLeader)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	return lc.c.Members[l].Name, nil
}

// Kill sends SIGKILL to a member and waits for it to exit.
func (lc *LocalCluster) Kill(name string) error {
	i, err := lc.index(name)
	if err != nil {
		return err
	}
	lc.c.Kill(i)
	return nil
}

// Restart starts a killed member again on the same data and addresses and
// waits until it is ready.
func (lc *LocalCluster) Restart(ctx context.Context, name string) error {
	i, err := lc.index(name)
	if err != nil {
		return err
	}
	if err := lc.c.Start(i); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := lc.c.WaitReady(ctx, i, localReady); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// Stop stops every member with SIGTERM, then SIGKILL after 10s (or once
// ctx ends). A member that does not exit cleanly is logged, not an error:
// the run's figures are taken by then.
func (lc *LocalCluster) Stop(ctx context.Context) {
	if err := lc.c.StopAll(ctx, localStop); err != nil {
		lc.log.Warn("a member of the local cluster did not stop cleanly", "err", err)
	}
}
