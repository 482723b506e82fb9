package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
	build := exec.Command("go", "build", "-race", "-o", binary, "..")
	if os.Getenv("ARBOR_E2E_NORACE") != "" {
		build = exec.Command("go", "build", "-o", binary, "..")
	}
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building arbor:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// member is one arbor server process and the flags that restart it.
type member struct {
	name       string
	dataDir    string
	clientAddr string
	peerAddr   string
	args       []string
	logPath    string
	cmd        *exec.Cmd
	done       chan error
}

// cluster is a set of arbor server processes on 127.0.0.1.
type cluster struct {
	t       *testing.T
	members []*member
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// startCluster starts n members bootstrapped together; extra flags go to every member.
func startCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	ports := freePorts(t, 3*n)
	c := &cluster{t: t}
	var initial []string
	for i := range n {
		m := &member{
			name:       fmt.Sprintf("m%d", i+1),
			dataDir:    filepath.Join(t.TempDir(), "data"),
			clientAddr: fmt.Sprintf("127.0.0.1:%d", ports[3*i]),
			peerAddr:   fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]),
		}
		m.logPath = filepath.Join(t.TempDir(), m.name+".log")
		m.args = []string{"server", "--name", m.name, "--data-dir", m.dataDir,
			"--client-addr", m.clientAddr, "--peer-addr", m.peerAddr,
			"--gossip-addr", fmt.Sprintf("127.0.0.1:%d", ports[3*i+2])}
		initial = append(initial, m.name+"="+m.peerAddr)
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.args = append(m.args, "--initial-cluster", strings.Join(initial, ","))
		m.args = append(m.args, extra...)
	}
	for i := range c.members {
		c.start(i)
	}
	t.Cleanup(func() {
		for i, m := range c.members {
			if m.cmd != nil {
				c.kill(i)
			}
		}
		if t.Failed() {
			for _, m := range c.members {
				b, _ := os.ReadFile(m.logPath)
				lines := strings.Split(string(b), "\n")
				if len(lines) > 60 {
					lines = lines[len(lines)-60:]
				}
				t.Logf("--- log of %s (tail) ---\n%s", m.name, strings.Join(lines, "\n"))
			}
		}
	})
	for i := range c.members {
		c.waitReady(i, 20*time.Second)
	}
	return c
}

func (c *cluster) start(i int) {
	c.t.Helper()
	m := c.members[i]
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(binary, m.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatal(err)
	}
	m.cmd = cmd
	m.done = make(chan error, 1)
	go func() {
		m.done <- cmd.Wait()
		logf.Close()
	}()
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *cluster) kill(i int) {
	m := c.members[i]
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
	m.cmd = nil
}

// stop sends SIGTERM and waits for a clean exit.
func (c *cluster) stop(i int) error {
	m := c.members[i]
	if m.cmd == nil {
		return nil
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-m.done:
		m.cmd = nil
		return err
	case <-time.After(15 * time.Second):
		c.kill(i)
		return fmt.Errorf("%s did not stop within 15s of SIGTERM", m.name)
	}
}

// waitReady polls /readyz until it answers 200.
func (c *cluster) waitReady(i int, within time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := waitHTTP(ctx, "http://"+c.members[i].clientAddr+"/readyz"); err != nil {
		c.t.Fatalf("%s not ready within %v: %v", c.members[i].name, within, err)
	}
}

// leader asks member i who leads and returns its index.
func (c *cluster) leader(ctx context.Context, from int) (int, error) {
	conn, err := dial(ctx, c.members[from].clientAddr)
	if err != nil {
		return -1, err
	}
	defer conn.close()
	resp, err := conn.call(ctx, req("members"))
	if err != nil {
		return -1, err
	}
	for _, mm := range resp.Members {
		if mm.Role == "leader" {
			for j, m := range c.members {
				if m.name == mm.Name {
					return j, nil
				}
			}
		}
	}
	return -1, fmt.Errorf("no leader in %+v", resp.Members)
}

// findLeader polls until some live member names a leader.
func (c *cluster) findLeader(within time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for i, m := range c.members {
			if m.cmd == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			l, err := c.leader(ctx, i)
			cancel()
			if err == nil && c.members[l].cmd != nil {
				return l
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("no leader within %v", within)
	return -1
}
