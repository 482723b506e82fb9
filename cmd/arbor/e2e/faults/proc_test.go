package faults

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arbor-db/arbor/arbortest/proc"
	"github.com/arbor-db/arbor/client"
)

// baseUID is the uid of member m1; member mN runs as baseUID+N-1 so that
// nftables can match its sockets.
const baseUID = 40100

// cluster is three (or n) arbor server processes (package arbortest/proc),
// member mN on 127.0.0.N as uid baseUID+N-1, driven by one test: a harness
// error fails the test.
type cluster struct {
	t   *testing.T
	dir string // world-readable base of data dirs and logs
	*proc.Cluster
}

// clusterOpts tweaks a cluster before it starts.
type clusterOpts struct {
	extra   []string             // flags for every member
	dataDir func(i int) string   // a data dir to use instead of a fresh one ("": fresh)
	perArgs func(i int) []string // flags for member i only
}

// hostOf is the address of member i of a new cluster: mN on 127.0.0.N.
func hostOf(i int) string { return fmt.Sprintf("127.0.0.%d", i+1) }

// uid is the uid member m runs as, from its address: 127.0.0.N is mN.
func uid(m *proc.Member) int { return baseUID + int(net.ParseIP(m.Host).To4()[3]) - 1 }

// runAsOwnUID gives m its data dir and runs it as its own uid; the process
// dies with the test.
func runAsOwnUID(m *proc.Member) error {
	u := uid(m)
	if err := os.Chown(m.DataDir, u, u); err != nil {
		return err
	}
	m.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(u), Gid: uint32(u), NoSetGroups: true},
		Pdeathsig:  syscall.SIGKILL,
	}
	return nil
}

// newCluster starts n members bootstrapped together and waits until each
// is ready. The members are killed, the partitions healed and the dir
// removed when the test ends, and the log tails printed if it failed.
func newCluster(t *testing.T, n int, o clusterOpts) *cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "arbor-faults-")
	if err != nil {
		t.Fatal(err)
	}
	// Members run as other uids: they need to reach their data dirs.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pc, err := proc.StartCluster(ctx, proc.Options{Binary: binary, Dir: dir, N: n,
		Args: o.extra, MemberArgs: o.perArgs, DataDir: o.dataDir, Host: hostOf,
		Prepare: runAsOwnUID, ReadyWithin: 30 * time.Second})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: dir, Cluster: pc}
	t.Cleanup(func() {
		pc.KillAll()
		c.heal()
		if t.Failed() {
			t.Log(pc.LogTails(80))
			keepLogs(t, pc)
		}
		os.RemoveAll(dir)
	})
	return c
}

// start starts member i again on its data dir; the process dies with the
// test.
func (c *cluster) start(i int) {
	c.t.Helper()
	if err := c.Start(i); err != nil {
		c.t.Fatal(err)
	}
}

// stop sends SIGTERM and returns how the process exited.
func (c *cluster) stop(i int, within time.Duration) error { return c.Members[i].Stop(within) }

// wait waits for member i to exit on its own and returns how it exited.
func (c *cluster) wait(i int, within time.Duration) error { return c.Members[i].Wait(within) }

func (c *cluster) pause(i int) {
	c.t.Helper()
	if err := c.Members[i].Pause(); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) resume(i int) {
	c.t.Helper()
	if err := c.Members[i].Resume(); err != nil {
		c.t.Fatal(err)
	}
}

// waitReady waits until member i's /readyz answers 200.
func (c *cluster) waitReady(i int, within time.Duration) {
	c.t.Helper()
	if err := c.WaitReady(context.Background(), i, within); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) clientAddrs() []string { return c.Endpoints(-1) }

// dial opens a session through member i only.
func (c *cluster) dial(ctx context.Context, i int) (*client.Client, error) { return c.Dial(ctx, i) }

// waitLeader waits until a majority of the voters names a running,
// unpaused leader.
func (c *cluster) waitLeader(within time.Duration) int {
	c.t.Helper()
	l, err := c.WaitLeader(context.Background(), within)
	if err != nil {
		c.t.Fatal(err)
	}
	return l
}

// keepLogs copies the whole log of every member of a failed test out of
// its data dir, which goes with the test, and says where: the tails above
// seldom reach back to where a violation began.
func keepLogs(t *testing.T, pc *proc.Cluster) {
	dir := filepath.Join(os.TempDir(), "arbor-faults-logs", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("keeping member logs: %v", err)
		return
	}
	for _, m := range pc.Members {
		if err := os.WriteFile(filepath.Join(dir, m.Name+".log"), []byte(m.Log()), 0o644); err != nil {
			t.Logf("keeping the log of %s: %v", m.Name, err)
		}
	}
	t.Logf("member logs kept in %s", dir)
}
