package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
)

// baseUID is the uid of member 0; member i runs as baseUID+i so that
// nftables can match its sockets.
const baseUID = 40100

// member is one arbor server process and what it takes to restart it.
type member struct {
	name       string
	ip         string
	uid        int
	dataDir    string
	clientAddr string
	peerPort   int
	args       []string
	logPath    string

	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	err    error         // what Wait returned, once done is closed
	paused bool
}

// running reports whether the process was started and has not exited.
func (m *member) running() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// cluster is three (or n) arbor server processes, member i on 127.0.0.(i+1).
type cluster struct {
	t       *testing.T
	dir     string // world-readable base of data dirs and logs
	members []*member
}

// clusterOpts tweaks a cluster before it starts.
type clusterOpts struct {
	extra   []string               // flags for every member
	dataDir func(i int) string     // a data dir to use instead of a fresh one ("": fresh)
	perArgs func(i int) []string   // flags for member i only
	prep    func(i int, m *member) // runs before the first start
}

// freePort returns a port free on ip a moment ago. The namespace is
// private to this test binary, so nothing else takes it meanwhile.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newCluster starts n members bootstrapped together and waits until each
// is ready.
func newCluster(t *testing.T, n int, o clusterOpts) *cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "arbor-faults-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: dir}
	var initial []string
	for i := range n {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		m := &member{name: fmt.Sprintf("m%d", i+1), ip: ip, uid: baseUID + i}
		m.dataDir = filepath.Join(dir, m.name)
		if o.dataDir != nil && o.dataDir(i) != "" {
			m.dataDir = o.dataDir(i)
		}
		if err := os.MkdirAll(m.dataDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(m.dataDir, m.uid, m.uid); err != nil {
			t.Fatal(err)
		}
		m.clientAddr = fmt.Sprintf("%s:%d", ip, freePort(t, ip))
		m.peerPort = freePort(t, ip)
		m.logPath = filepath.Join(dir, m.name+".log")
		m.args = []string{"server", "--name", m.name, "--data-dir", m.dataDir,
			"--client-addr", m.clientAddr, "--peer-addr", fmt.Sprintf("%s:%d", ip, m.peerPort),
			"--gossip-addr", fmt.Sprintf("%s:%d", ip, freePort(t, ip))}
		initial = append(initial, fmt.Sprintf("%s=%s:%d", m.name, ip, m.peerPort))
		c.members = append(c.members, m)
	}
	for i, m := range c.members {
		m.args = append(m.args, "--initial-cluster", strings.Join(initial, ","))
		m.args = append(m.args, o.extra...)
		if o.perArgs != nil {
			m.args = append(m.args, o.perArgs(i)...)
		}
		if o.prep != nil {
			o.prep(i, m)
		}
	}
	t.Cleanup(func() {
		for i := range c.members {
			c.kill(i)
		}
		c.heal()
		if t.Failed() {
			c.dumpLogs()
		}
		os.RemoveAll(dir)
	})
	for i := range c.members {
		c.start(i)
	}
	for i := range c.members {
		c.waitReady(i, 30*time.Second)
	}
	return c
}

func (c *cluster) dumpLogs() {
	for _, m := range c.members {
		b, _ := os.ReadFile(m.logPath)
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 80 {
			lines = lines[len(lines)-80:]
		}
		c.t.Logf("--- log of %s (tail) ---\n%s", m.name, strings.Join(lines, "\n"))
	}
}

// start runs member i as its own uid; the process dies with the test.
func (c *cluster) start(i int) {
	c.t.Helper()
	m := c.members[i]
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(binary, m.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(m.uid), Gid: uint32(m.uid), NoSetGroups: true},
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatal(err)
	}
	m.cmd, m.paused = cmd, false
	m.done = make(chan struct{})
	go func() {
		m.err = cmd.Wait()
		logf.Close()
		close(m.done)
	}()
}

// kill sends SIGKILL (a paused process dies too) and waits until it is gone.
func (c *cluster) kill(i int) {
	m := c.members[i]
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
	m.cmd, m.paused = nil, false
}

// stop sends SIGTERM and returns how the process exited.
func (c *cluster) stop(i int, within time.Duration) error {
	m := c.members[i]
	if m.cmd == nil {
		return nil
	}
	if m.paused {
		c.resume(i)
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
		m.cmd = nil
		return m.err
	case <-time.After(within):
		c.kill(i)
		return fmt.Errorf("%s did not stop within %v of SIGTERM", m.name, within)
	}
}

// wait waits for member i to exit on its own and returns how it exited.
func (c *cluster) wait(i int, within time.Duration) error {
	m := c.members[i]
	select {
	case <-m.done:
		m.cmd = nil
		return m.err
	case <-time.After(within):
		return fmt.Errorf("%s still running after %v", m.name, within)
	}
}

func (c *cluster) pause(i int) {
	c.t.Helper()
	if err := c.members[i].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		c.t.Fatal(err)
	}
	c.members[i].paused = true
}

func (c *cluster) resume(i int) {
	c.t.Helper()
	if err := c.members[i].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		c.t.Fatal(err)
	}
	c.members[i].paused = false
}

// waitReady polls /readyz until it answers 200.
func (c *cluster) waitReady(i int, within time.Duration) {
	c.t.Helper()
	m := c.members[i]
	deadline := time.Now().Add(within)
	for {
		if !m.running() {
			c.t.Fatalf("%s exited while waiting for it to be ready: %v", m.name, m.err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.clientAddr+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not ready within %v (last: %v)", m.name, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// endpoints lists the client addresses, member first (all when first < 0).
func (c *cluster) endpoints(first int) []string {
	var eps []string
	if first >= 0 {
		eps = append(eps, c.members[first].clientAddr)
	}
	for i, m := range c.members {
		if i != first {
			eps = append(eps, m.clientAddr)
		}
	}
	return eps
}

func (c *cluster) clientAddrs() []string { return c.endpoints(-1) }

// dial opens a session through member i only.
func (c *cluster) dial(ctx context.Context, i int) (*client.Client, error) {
	return client.Dial(ctx, client.Config{
		Endpoints: []string{c.members[i].clientAddr}, DialTimeout: time.Second,
		Logger: quietLogger, NoDiscovery: true,
	})
}

var errNoLeader = errors.New("no leader agreed by a majority")

// leader asks every running, unpaused member who leads and returns the
// index a majority of the cluster names.
func (c *cluster) leader(ctx context.Context) (int, error) {
	votes := map[string]int{}
	for i, m := range c.members {
		if !m.running() || m.paused {
			continue
		}
		cl, err := c.dial(ctx, i)
		if err != nil {
			continue
		}
		ms, err := cl.Members(ctx)
		cl.Close(ctx)
		if err != nil {
			continue
		}
		for _, mm := range ms {
			if mm.Role == "leader" {
				votes[mm.Name]++
			}
		}
	}
	for name, n := range votes {
		if n > len(c.members)/2 {
			for j, m := range c.members {
				if m.name == name {
					return j, nil
				}
			}
		}
	}
	return -1, fmt.Errorf("%w: %v", errNoLeader, votes)
}

// waitLeader polls until a majority agrees on a running leader.
func (c *cluster) waitLeader(within time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		l, err := c.leader(ctx)
		cancel()
		if err == nil && c.members[l].running() && !c.members[l].paused {
			return l
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no leader within %v: %v", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
