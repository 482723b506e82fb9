package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/arbor-db/arbor/arbortest/proc"
)

// binary is the arbor binary built once for the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "arbor-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "arbor")
	var flags []string
	if os.Getenv("ARBOR_E2E_NORACE") == "" {
		flags = append(flags, "-race")
	}
	if err := proc.Build(binary, "..", flags...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is a set of arbor server processes on 127.0.0.1 (package
// arbortest/proc) driven by one test: a harness error fails the test.
type cluster struct {
	t *testing.T
	*proc.Cluster
}

// stopWithin bounds a SIGTERM'd member's exit.
const stopWithin = 15 * time.Second

// startCluster starts n members bootstrapped together; extra flags go to
// every member. The members are killed when the test ends, and their log
// tails printed if it failed.
func startCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pc, err := proc.StartCluster(ctx, proc.Options{Binary: binary, Dir: t.TempDir(), N: n, Args: extra,
		ReadyWithin: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pc.KillAll()
		if t.Failed() {
			t.Log(pc.LogTails(60))
		}
	})
	return &cluster{t: t, Cluster: pc}
}

func (c *cluster) start(i int) {
	c.t.Helper()
	if err := c.Start(i); err != nil {
		c.t.Fatal(err)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (c *cluster) stop(i int) error { return c.Members[i].Stop(stopWithin) }

// waitReady waits until member i's /readyz answers 200.
func (c *cluster) waitReady(i int, within time.Duration) {
	c.t.Helper()
	if err := c.WaitReady(context.Background(), i, within); err != nil {
		c.t.Fatal(err)
	}
}

// findLeader waits until a majority of the voters names a running leader.
func (c *cluster) findLeader(within time.Duration) int {
	c.t.Helper()
	l, err := c.WaitLeader(context.Background(), within)
	if err != nil {
		c.t.Fatal(err)
	}
	return l
}

// settled waits until member i has applied everything the leader had
// committed, and returns its /debug/state then.
func (c *cluster) settled(i int, within time.Duration) proc.State {
	c.t.Helper()
	st, err := c.WaitSettled(context.Background(), i, within)
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}
