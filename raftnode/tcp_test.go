package raftnode_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/raftnode/rafttest"
)

// tcpMember is a member on the real TCP transport.
type tcpMember struct {
	cfg    raftnode.Config
	node   *raftnode.Node
	kv     *rafttest.KV
	cancel context.CancelFunc
	done   chan error
}

// startTCP starts m on ln; setup, when set, runs between New and Run.
func startTCP(t *testing.T, m *tcpMember, ln net.Listener, setup func(*raftnode.Node)) {
	t.Helper()
	m.cfg.PeerListener = ln
	m.kv = rafttest.NewKV()
	n, err := raftnode.New(m.cfg, m.kv)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.node, m.cancel, m.done = n, cancel, make(chan error, 1)
	go func() { m.done <- n.Run(ctx) }()
}

func (m *tcpMember) stop(t *testing.T) {
	m.cancel()
	if err := <-m.done; err != nil {
		t.Errorf("%s: Run: %v", m.cfg.Name, err)
	}
}

// tcpCluster is three members on loopback TCP that snapshot every 20
// entries and keep 10 behind a snapshot, so a follower that misses 100
// entries catches up by a streamed snapshot.
type tcpCluster struct {
	t     *testing.T
	peers []raftnode.Peer
	ms    []*tcpMember
}

func newTCPCluster(t *testing.T) *tcpCluster {
	c := &tcpCluster{t: t}
	var lns []net.Listener
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		c.peers = append(c.peers, raftnode.Peer{Name: fmt.Sprintf("t%d", i), PeerURL: ln.Addr().String()})
	}
	c.ms = make([]*tcpMember, 3)
	for i := range c.ms {
		c.ms[i] = &tcpMember{cfg: raftnode.Config{
			Name: c.peers[i].Name, DataDir: t.TempDir(), InitialCluster: c.peers,
			SnapshotEntries: 20, CompactKeepEntries: 10, TickInterval: 20 * time.Millisecond,
		}}
		startTCP(t, c.ms[i], lns[i], nil)
	}
	return c
}

// stopAll stops every member (each must be running).
func (c *tcpCluster) stopAll() {
	for _, m := range c.ms {
		m.stop(c.t)
	}
}

// restart starts stopped member i again on its data dir and address.
func (c *tcpCluster) restart(i int, setup func(*raftnode.Node)) {
	c.t.Helper()
	ln, err := net.Listen("tcp", c.peers[i].PeerURL)
	if err != nil {
		c.t.Fatal(err)
	}
	startTCP(c.t, c.ms[i], ln, setup)
}

func (c *tcpCluster) leader() int {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i, m := range c.ms {
			if m.node.Status().IsLeader {
				return i
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatal("no leader")
	return -1
}

// propose proposes cmd through the leader until the leader applied it.
func (c *tcpCluster) propose(ctx context.Context, cmd string) {
	c.t.Helper()
	for ctx.Err() == nil {
		l := c.leader()
		if err := c.ms[l].node.Propose(ctx, []byte(cmd)); err == nil {
			for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
				if c.ms[l].kv.Has(cmd) {
					return
				}
			}
		}
	}
	c.t.Fatalf("propose %s: %v", cmd, ctx.Err())
}

// waitCaughtUp waits until member f applied what member l has and checks
// it applied the same sequence, by way of a streamed snapshot.
func (c *tcpCluster) waitCaughtUp(f, l int) {
	c.t.Helper()
	want := c.ms[l].kv.Applied()
	for end := time.Now().Add(20 * time.Second); c.ms[f].kv.Applied() < want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			c.t.Fatalf("restarted follower applied %d, leader %d", c.ms[f].kv.Applied(), want)
		}
	}
	if c.ms[f].kv.Restores() == 0 {
		c.t.Fatal("follower did not install a streamed snapshot")
	}
	if c.ms[f].kv.Hash(want) != c.ms[l].kv.Hash(want) {
		c.t.Fatal("follower applied a different sequence")
	}
}

func TestTCPClusterSnapshotCatchUp(t *testing.T) {
	c := newTCPCluster(t)
	defer c.stopAll()
	ctx := ctxT(t, 30*time.Second)
	l := c.leader()
	f := (l + 1) % 3
	c.propose(ctx, "first")
	c.ms[f].stop(t)
	for i := range 100 {
		c.propose(ctx, fmt.Sprintf("c-%d", i))
	}
	c.restart(f, nil)
	c.waitCaughtUp(f, l)
	for _, m := range c.ms[f].node.Members() {
		if !m.Alive {
			t.Errorf("member %+v not alive", m)
		}
	}
}

// A follower whose fsync of a received snapshot fails stops with the error
// instead of logging it and letting the leader's resend write and fsync the
// snapshot again (fsyncgate), and recovers when started again on the same
// data dir without the fault.
func TestReceivedSnapshotSyncErrorStopsRun(t *testing.T) {
	c := newTCPCluster(t)
	defer c.stopAll()
	ctx := ctxT(t, 60*time.Second)
	l := c.leader()
	f := (l + 1) % 3
	c.propose(ctx, "first")
	c.ms[f].stop(t)
	for i := range 100 {
		c.propose(ctx, fmt.Sprintf("c-%d", i))
	}
	injected := errors.New("injected fsync failure")
	var syncs atomic.Int32
	c.restart(f, func(n *raftnode.Node) {
		raftnode.SetReceivedSnapshotSyncFault(n, func() error {
			syncs.Add(1)
			return injected
		})
	})
	select {
	case err := <-c.ms[f].done:
		if !errors.Is(err, raftnode.ErrStorage) || !errors.Is(err, injected) {
			t.Fatalf("Run = %v, want the injected storage error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Run kept going after %d failed fsyncs of a received snapshot", syncs.Load())
	}
	if n := syncs.Load(); n != 1 {
		t.Fatalf("%d fsyncs of a received snapshot, want 1: a failed one is never retried", n)
	}
	if tmps, _ := filepath.Glob(filepath.Join(c.ms[f].cfg.DataDir, "snap", "*.part")); len(tmps) > 0 {
		t.Errorf("temp files left: %v", tmps)
	}
	c.restart(f, nil)
	c.waitCaughtUp(f, l)
}
