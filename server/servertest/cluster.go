package servertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/arbor-db/arbor/server"
)

// Option adjusts every member's config before it starts.
type Option func(*server.Config)

// Fsync makes members fsync their log, as in production (benchmarks).
func Fsync() Option { return func(cfg *server.Config) { cfg.NoSync = false } }

// WithConfig applies f to every member's config.
func WithConfig(f func(*server.Config)) Option { return Option(f) }

// autoGossip marks a config whose member gossips on a port of its own.
const autoGossip = "127.0.0.1:auto"

// Gossip makes every member run gossip (on a free loopback port each),
// with key when it is not nil.
func Gossip(key []byte) Option {
	return func(cfg *server.Config) {
		if cfg.GossipAddr == "" {
			cfg.GossipAddr = autoGossip
		}
		if cfg.GossipKey == nil {
			cfg.GossipKey = key
		}
	}
}

// readyTimeout bounds how long a member may take to become ready.
const readyTimeout = 30 * time.Second

// Cluster is a running in-process cluster.
type Cluster struct {
	t       testing.TB
	opts    []Option
	mu      sync.Mutex
	members []*member
}

type member struct {
	name       string
	dataDir    string
	clientAddr string
	peerAddr   string
	gossipAddr string   // with Gossip
	join       []string // a member that joined with Cluster.Join
	learner    bool
	key        []byte
	cancel     context.CancelFunc // nil when stopped
	done       chan error
}

// NewCluster starts n members that form one cluster and waits until every
// one is ready (has a leader and has applied its commit index).
func NewCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{t: t, opts: opts}
	clientLns := make([]net.Listener, n)
	peerLns := make([]net.Listener, n)
	for i := range n {
		clientLns[i] = listen(t, "127.0.0.1:0")
		peerLns[i] = listen(t, "127.0.0.1:0")
		c.members = append(c.members, &member{
			name:       fmt.Sprintf("m%d", i+1),
			dataDir:    filepath.Join(t.TempDir(), "data"),
			clientAddr: clientLns[i].Addr().String(),
			peerAddr:   peerLns[i].Addr().String(),
		})
	}
	t.Cleanup(c.stopAll)
	for i := range n {
		c.start(i, clientLns[i], peerLns[i])
	}
	for i := range n {
		c.WaitReady(i)
	}
	return c
}

// Size returns the number of members.
func (c *Cluster) Size() int { return len(c.members) }

// Name returns member i's name.
func (c *Cluster) Name(i int) string { return c.members[i].name }

// Addr returns member i's client address (host:port), for ws://ADDR/v1.
func (c *Cluster) Addr(i int) string { return c.members[i].clientAddr }

// Addrs returns every member's client address.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.clientAddr
	}
	return out
}

// Stop stops member i cleanly and waits for it (a leader hands over first).
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	c.mu.Lock()
	m := c.members[i]
	cancel := m.cancel
	m.cancel = nil
	c.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	if err := <-m.done; err != nil && !errors.Is(err, server.ErrRemoved) {
		c.t.Errorf("member %s: Run: %v", m.name, err)
	}
}

// RestartOnNewPeerAddr restarts member i with its data but a new peer
// address (a member moved to another host), and does not wait.
func (c *Cluster) RestartOnNewPeerAddr(i int) {
	c.t.Helper()
	c.Stop(i)
	m := c.members[i]
	peerLn := listen(c.t, "127.0.0.1:0")
	m.peerAddr = peerLn.Addr().String()
	c.start(i, listen(c.t, m.clientAddr), peerLn)
}

// Rejoin stops member i (removed from the cluster, say), empties its data
// dir and starts it again joining through member 0's gossip, as an operator
// brings a removed member back. It does not wait.
func (c *Cluster) Rejoin(i int) {
	c.t.Helper()
	c.Stop(i)
	m := c.members[i]
	if err := os.RemoveAll(m.dataDir); err != nil {
		c.t.Fatal(err)
	}
	m.join = []string{c.members[0].gossipAddr}
	c.start(i, listen(c.t, m.clientAddr), listen(c.t, m.peerAddr))
}

// Exited reports whether member i's Run returned on its own (removed,
// say), and with what.
func (c *Cluster) Exited(i int) (bool, error) {
	m := c.members[i]
	select {
	case err := <-m.done:
		m.done <- err // keep it for Stop
		return true, err
	default:
		return false, nil
	}
}

// Restart starts a stopped member i again on the same addresses and data,
// and waits until it is ready.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Stop(i)
	m := c.members[i]
	c.start(i, listen(c.t, m.clientAddr), listen(c.t, m.peerAddr))
	c.WaitReady(i)
}

// Ready reports whether the member serving clients at addr answers 200 on
// /readyz.
func Ready(hc *http.Client, addr string) bool {
	resp, err := hc.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitReady waits until member i answers 200 on /readyz.
func (c *Cluster) WaitReady(i int) {
	c.t.Helper()
	m := c.members[i]
	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-m.done:
			m.done <- err // keep it for Stop
			c.t.Fatalf("member %s stopped before it was ready: %v", m.name, err)
		default:
		}
		if Ready(client, m.clientAddr) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("member %s not ready after %v", m.name, readyTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) start(i int, clientLn, peerLn net.Listener) {
	m := c.members[i]
	peers := make([]server.Peer, len(c.members))
	for j, o := range c.members {
		peers[j] = server.Peer{Name: o.name, PeerURL: o.peerAddr}
	}
	cfg := server.Config{
		Name:           m.name,
		DataDir:        m.dataDir,
		ClientListener: clientLn,
		PeerListener:   peerLn,
		InitialCluster: peers,
		TickInterval:   20 * time.Millisecond,
		NoSync:         true,
		Logger:         testLogger(),
	}
	if m.join != nil {
		cfg.InitialCluster, cfg.Join, cfg.Learner, cfg.GossipKey = nil, m.join, m.learner, m.key
	}
	for _, o := range c.opts {
		o(&cfg)
	}
	if cfg.GossipAddr == autoGossip {
		if m.gossipAddr == "" {
			m.gossipAddr = freeUDPAndTCP(c.t)
		}
		cfg.GossipAddr = m.gossipAddr
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg) }()
	c.mu.Lock()
	m.cancel, m.done = cancel, done
	c.mu.Unlock()
}

func (c *Cluster) stopAll() {
	for i := range c.members {
		c.Stop(i)
	}
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	// A port just released may linger briefly; retry within a deadline.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	return ln
}

// testLogger discards logs unless ARBOR_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("ARBOR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// GossipAddr returns member i's gossip address (with Gossip).
func (c *Cluster) GossipAddr(i int) string { return c.members[i].gossipAddr }

// Join starts a new member with an empty data dir that joins the cluster
// through member 0's gossip (as a learner that stays one with learner;
// with key instead of the cluster's when key is not nil), and returns its
// index. It does not wait: the leader has to add it first (WaitReady).
func (c *Cluster) Join(learner bool, key []byte) int {
	c.t.Helper()
	if c.members[0].gossipAddr == "" {
		c.t.Fatal("Join needs a cluster started with Gossip")
	}
	clientLn, peerLn := listen(c.t, "127.0.0.1:0"), listen(c.t, "127.0.0.1:0")
	c.mu.Lock()
	m := &member{
		name:       fmt.Sprintf("m%d", len(c.members)+1),
		dataDir:    filepath.Join(c.t.TempDir(), "data"),
		clientAddr: clientLn.Addr().String(),
		peerAddr:   peerLn.Addr().String(),
		join:       []string{c.members[0].gossipAddr},
		learner:    learner,
		key:        key,
	}
	c.members = append(c.members, m)
	i := len(c.members) - 1
	c.mu.Unlock()
	c.start(i, clientLn, peerLn)
	return i
}

// freeUDPAndTCP returns a loopback address free for both TCP and UDP
// (memberlist binds both on one port).
func freeUDPAndTCP(t testing.TB) string {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no loopback port free for both TCP and UDP")
	return ""
}

// PeerAddr returns member i's raft address.
func (c *Cluster) PeerAddr(i int) string { return c.members[i].peerAddr }
