package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/raftnode/rafttest"
	"github.com/arbor-db/arbor/raftnode/wal"
	"github.com/arbor-db/arbor/server"
	"github.com/arbor-db/arbor/server/servertest"
)

// cluster is n whole members on one fault-injecting network.
type cluster struct {
	t   *testing.T
	net *rafttest.Network

	mu      sync.Mutex
	members []*member
}

type member struct {
	name    string
	id      uint64
	dataDir string
	addr    string // client HOST:PORT, kept across restarts
	cancel  context.CancelFunc
	done    chan error // nil while crashed
}

func newCluster(t *testing.T, n int, seed int64) *cluster {
	t.Helper()
	c := &cluster{t: t, net: rafttest.NewNetwork(seed)}
	lns := make([]net.Listener, n)
	for i := range n {
		lns[i] = listen(t, "127.0.0.1:0")
		name := fmt.Sprintf("m%d", i+1)
		c.members = append(c.members, &member{
			name: name, id: raftnode.MemberID(name),
			dataDir: filepath.Join(t.TempDir(), "data"), addr: lns[i].Addr().String(),
		})
	}
	for i := range n {
		c.start(i, lns[i])
	}
	for i := range n {
		c.waitReady(i, 30*time.Second)
	}
	return c
}

func (c *cluster) size() int { return len(c.members) }

func (c *cluster) addrs() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.addr
	}
	return out
}

func (c *cluster) start(i int, ln net.Listener) {
	m := c.members[i]
	peers := make([]server.Peer, len(c.members))
	for j, o := range c.members {
		// The in-memory network routes by member id; the URL is a label.
		peers[j] = server.Peer{Name: o.name, PeerURL: fmt.Sprintf("127.0.0.1:%d", 1+j)}
	}
	cfg := server.Config{
		Name:            m.name,
		DataDir:         m.dataDir,
		ClientListener:  ln,
		InitialCluster:  peers,
		TickInterval:    20 * time.Millisecond,
		RequestTimeout:  2 * time.Second,
		SnapshotEntries: 300, // snapshots and catch-up by snapshot happen within seconds
		MinSessionMs:    1000,
		// Small, so that a watcher that pauses falls out of it (a resync).
		WatchHistoryEvents: watchHistory,
		RaftTransport:      c.net.Endpoint(m.id),
		NoHandOver:         true, // every stop is a crash
		Logger:             testLogger(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg) }()
	c.mu.Lock()
	m.cancel, m.done = cancel, done
	c.mu.Unlock()
}

// up reports whether member i runs.
func (c *cluster) up(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i].done != nil
}

// crash stops member i without a hand-over, keeping its data dir. Its
// fsync'd log is what a crash would leave. A Run error fails the test.
func (c *cluster) crash(i int) { c.stop(i, false) }

// stop stops member i; powerCut says its log has no power, so Run may end
// with the storage error of a failed sync.
func (c *cluster) stop(i int, powerCut bool) {
	c.mu.Lock()
	m := c.members[i]
	cancel, done := m.cancel, m.done
	m.cancel, m.done = nil, nil
	c.mu.Unlock()
	if done == nil {
		return
	}
	cancel()
	if err := <-done; err != nil && !(powerCut && errors.Is(err, raftnode.ErrStorage)) {
		c.t.Errorf("member %s: Run: %v", m.name, err)
	}
}

// powerLoss cuts the power of every member at one instant (wal.PowerCut:
// their log syncs fail from then on, so nothing more is acknowledged),
// stops them, and cuts each one's log back to what it had fdatasync'd
// before the cut (wal.TrackSyncs is on for the whole suite). It returns the
// bytes each lost.
func (c *cluster) powerLoss() []int64 {
	dirs := make([]string, len(c.members))
	for i, m := range c.members {
		dirs[i] = filepath.Join(m.dataDir, "wal")
	}
	wal.PowerCut(dirs...)
	for i := range c.members {
		c.stop(i, true)
	}
	lost := make([]int64, len(c.members))
	for i, d := range dirs {
		n, err := wal.LoseUnsynced(d)
		if err != nil {
			c.t.Errorf("power loss of %s: %v", c.members[i].name, err)
		}
		lost[i] = n
	}
	return lost
}

// restart starts crashed member i on its data dir and client address; it
// does not wait for it to be ready (it may be partitioned).
func (c *cluster) restart(i int) {
	if c.up(i) {
		return
	}
	ln, err := listenRetry(c.members[i].addr)
	if err != nil {
		c.t.Errorf("restart %s: %v", c.members[i].name, err)
		return
	}
	c.start(i, ln)
}

func (c *cluster) stopAll() {
	for i := range c.members {
		c.crash(i)
	}
	c.net.Wait()
}

// waitReady waits until member i answers 200 on /readyz.
func (c *cluster) waitReady(i int, timeout time.Duration) {
	c.t.Helper()
	m := c.members[i]
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: time.Second}
	for {
		if servertest.Ready(hc, m.addr) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("member %s not ready after %v", m.name, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leader returns the index of a running member that reports itself leader
// on /metrics, or -1.
func (c *cluster) leader() int {
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	for i, m := range c.members {
		if !c.up(i) {
			continue
		}
		resp, err := hc.Get("http://" + m.addr + "/metrics")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		leader := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "arbor_raft_is_leader 1") {
				leader = true
			}
		}
		resp.Body.Close()
		if leader {
			return i
		}
	}
	return -1
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := listenRetry(addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// listenRetry listens on addr; a port just released may linger briefly, so
// it retries within a deadline.
func listenRetry(addr string) (net.Listener, error) {
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		ln, lerr := net.Listen("tcp", addr)
		if lerr == nil {
			return ln, nil
		}
		err = lerr
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testLogger discards logs unless ARBOR_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("ARBOR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
