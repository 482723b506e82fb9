package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/wire"
)

// ErrClusterStart is returned when a local cluster does not come up.
var ErrClusterStart = errors.New("bench: local cluster did not start")

// LocalCluster is an Arbor cluster of `arbor server` processes on loopback
// that this process started, for failover (and for benchmarking without a
// cluster at hand). Members log to DIR/NAME.log.
type LocalCluster struct {
	binary string
	dir    string
	log    *slog.Logger

	mu      sync.Mutex
	members []*localMember
}

type localMember struct {
	name, dataDir                  string
	clientAddr, peerAddr, gossAddr string
	cmd                            *exec.Cmd
	exited                         chan struct{}
}

var _ Cluster = (*LocalCluster)(nil)

// StartLocalCluster starts n members of binary (an arbor executable) with
// data under dir and waits until every member is ready. Ports are picked
// free and released before the members bind them, so another process can
// take one in between: a start that fails on a port in use is tried again
// on new ports (twice at most).
func StartLocalCluster(ctx context.Context, binary, dir string, n int, logger *slog.Logger) (*LocalCluster, error) {
	for attempt := 1; ; attempt++ {
		lc, err := startLocalCluster(ctx, binary, filepath.Join(dir, fmt.Sprintf("try%d", attempt)), n, logger)
		if err == nil {
			return lc, nil
		}
		if attempt == 3 || !lc.portTaken() {
			return nil, err
		}
		logger.Warn("a port of the local cluster was taken meanwhile; starting again on new ports", "attempt", attempt)
	}
}

// portTaken reports whether a member's log says its address was in use.
func (lc *LocalCluster) portTaken() bool {
	if lc == nil {
		return false
	}
	for _, m := range lc.members {
		if b, err := os.ReadFile(filepath.Join(lc.dir, m.name+".log")); err == nil && strings.Contains(string(b), "address already in use") {
			return true
		}
	}
	return false
}

func startLocalCluster(ctx context.Context, binary, dir string, n int, logger *slog.Logger) (*LocalCluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lc := &LocalCluster{binary: binary, dir: dir, log: logger}
	var initial []string
	for i := range n {
		m := &localMember{name: fmt.Sprintf("m%d", i+1), dataDir: filepath.Join(dir, fmt.Sprintf("m%d", i+1))}
		ports, err := freePorts(3)
		if err != nil {
			return nil, err
		}
		m.clientAddr, m.peerAddr, m.gossAddr = ports[0], ports[1], ports[2]
		lc.members = append(lc.members, m)
		initial = append(initial, m.name+"="+m.peerAddr)
	}
	for _, m := range lc.members {
		if err := lc.start(m, strings.Join(initial, ",")); err != nil {
			lc.Stop(ctx)
			return lc, err
		}
	}
	for _, m := range lc.members {
		if err := lc.awaitReady(ctx, m); err != nil {
			lc.Stop(ctx)
			return lc, err
		}
	}
	return lc, nil
}

// freePorts reserves n loopback ports by binding port 0 and releasing
// them; the member binds them a moment later.
func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrClusterStart, err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

func (lc *LocalCluster) start(m *localMember, initial string) error {
	logf, err := os.OpenFile(filepath.Join(lc.dir, m.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrClusterStart, err)
	}
	cmd := exec.Command(lc.binary, "server", "--name", m.name, "--data-dir", m.dataDir,
		"--client-addr", m.clientAddr, "--peer-addr", m.peerAddr, "--gossip-addr", m.gossAddr,
		"--initial-cluster", initial)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The member must not inherit ARBOR_* settings meant for the bench.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ARBOR_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%w: %s: %w", ErrClusterStart, m.name, err)
	}
	exited := make(chan struct{})
	go func() { // reaps the process; ends when it exits
		_ = cmd.Wait() // a killed member exits with an error by design
		logf.Close()
		close(exited)
	}()
	lc.mu.Lock()
	m.cmd, m.exited = cmd, exited
	lc.mu.Unlock()
	lc.log.Debug("started member", "member", m.name, "pid", cmd.Process.Pid, "client_addr", m.clientAddr)
	return nil
}

// awaitReady polls the member's /readyz for up to a minute.
func (lc *LocalCluster) awaitReady(ctx context.Context, m *localMember) error {
	deadline := time.Now().Add(time.Minute)
	url := "http://" + m.clientAddr + "/readyz"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrClusterStart, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-m.exited:
			return fmt.Errorf("%w: %s exited; see %s", ErrClusterStart, m.name, filepath.Join(lc.dir, m.name+".log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s not ready after a minute", ErrClusterStart, m.name)
		}
	}
}

func (lc *LocalCluster) member(name string) *localMember {
	for _, m := range lc.members {
		if m.name == name {
			return m
		}
	}
	return nil
}

// Members returns the member names.
func (lc *LocalCluster) Members() []string {
	var names []string
	for _, m := range lc.members {
		names = append(names, m.name)
	}
	return names
}

// Endpoint returns a member's client address.
func (lc *LocalCluster) Endpoint(name string) string {
	if m := lc.member(name); m != nil {
		return m.clientAddr
	}
	return ""
}

// Endpoints returns every member's client address.
func (lc *LocalCluster) Endpoints() []string {
	var eps []string
	for _, m := range lc.members {
		eps = append(eps, m.clientAddr)
	}
	return eps
}

// PIDs returns the process ids of the running members.
func (lc *LocalCluster) PIDs() []int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	var pids []int
	for _, m := range lc.members {
		select {
		case <-m.exited:
		default:
			pids = append(pids, m.cmd.Process.Pid)
		}
	}
	return pids
}

// Leader asks the members which of them leads, polling for up to 30s
// while there is none.
func (lc *LocalCluster) Leader(ctx context.Context) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, m := range lc.members {
			if name := askLeader(ctx, m.clientAddr); name != "" {
				return name, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("bench: no member reports a leader")
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func askLeader(ctx context.Context, addr string) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Endpoints: []string{addr}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return ""
	}
	defer c.Close(ctx)
	ms, err := c.Members(ctx)
	if err != nil {
		return ""
	}
	for _, m := range ms {
		if m.Role == wire.RoleLeader {
			return m.Name
		}
	}
	return ""
}

// Kill sends SIGKILL to a member and waits for it to exit.
func (lc *LocalCluster) Kill(name string) error {
	m := lc.member(name)
	if m == nil {
		return fmt.Errorf("bench: no member %q", name)
	}
	lc.mu.Lock()
	cmd, exited := m.cmd, m.exited
	lc.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("bench: killing %s: %w", name, err)
	}
	<-exited
	return nil
}

// Restart starts a killed member again on the same data and addresses and
// waits until it is ready.
func (lc *LocalCluster) Restart(ctx context.Context, name string) error {
	m := lc.member(name)
	if m == nil {
		return fmt.Errorf("bench: no member %q", name)
	}
	// The data dir holds the cluster: --initial-cluster is ignored now.
	var initial []string
	for _, o := range lc.members {
		initial = append(initial, o.name+"="+o.peerAddr)
	}
	if err := lc.start(m, strings.Join(initial, ",")); err != nil {
		return err
	}
	return lc.awaitReady(ctx, m)
}

// Stop stops every member with SIGTERM, then SIGKILL after 10s.
func (lc *LocalCluster) Stop(ctx context.Context) {
	var wg sync.WaitGroup
	for _, m := range lc.members {
		lc.mu.Lock()
		cmd, exited := m.cmd, m.exited
		lc.mu.Unlock()
		if cmd == nil {
			continue
		}
		wg.Go(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM) // fails only if already gone
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			case <-ctx.Done():
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}
	wg.Wait()
}
