package raftnode_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
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
	setup func(*raftnode.Node)
}

func newTCPCluster(t *testing.T) *tcpCluster { return newTCPClusterSetup(t, nil) }

// newTCPClusterSetup is newTCPCluster with setup run on every member
// between New and Run, also on restarts by restart(i, nil).
func newTCPClusterSetup(t *testing.T, setup func(*raftnode.Node)) *tcpCluster {
	c := &tcpCluster{t: t, setup: setup}
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
		startTCP(t, c.ms[i], lns[i], setup)
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
	if setup == nil {
		setup = c.setup
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
	l, f := c.leaveBehind(ctx, t)
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
	l, f := c.leaveBehind(ctx, t)
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

// heldReader passes the first `pass` bytes of r, then blocks until open is
// closed: a snapshot stream that stalls mid-way.
type heldReader struct {
	r       io.Reader
	pass    int
	open    <-chan struct{}
	started chan<- struct{}
}

func (h *heldReader) Read(p []byte) (int, error) {
	if h.pass <= 0 {
		select {
		case h.started <- struct{}{}:
		default:
		}
		select {
		case <-h.open:
		case <-time.After(time.Minute): // the test failed without releasing
			return 0, errors.New("stream never released")
		}
		return h.r.Read(p)
	}
	n, err := h.r.Read(p[:min(len(p), h.pass)])
	h.pass -= n
	return n, err
}

// A snapshot stream to a lagging follower that stalls for many election
// timeouts does not hold back the leader's heartbeats to it: the follower
// keeps its leader (no pre-vote, no term change) throughout.
func TestTCPSlowSnapshotStreamKeepsFollowerHeartbeats(t *testing.T) {
	open, started := make(chan struct{}), make(chan struct{}, 1)
	var once sync.Once
	release := func() { once.Do(func() { close(open) }) }
	c := newTCPClusterSetup(t, func(n *raftnode.Node) {
		raftnode.SetSnapshotSendFilter(n, func(r io.Reader) io.Reader {
			return &heldReader{r: r, pass: 100, open: open, started: started}
		})
	})
	defer c.stopAll()
	defer release()
	ctx := ctxT(t, 60*time.Second)
	l, f := c.leaveBehind(ctx, t)
	c.restart(f, nil)
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the leader never streamed a snapshot")
	}
	// The leader starts the stream on the follower's answer to its first
	// heartbeat, which can reach it before the follower has published the
	// leader it just learned.
	before, restores := c.ms[f].node.Status(), c.ms[f].kv.Restores()
	for deadline := time.Now().Add(time.Second); before.Leader != c.ms[l].node.ID(); before = c.ms[f].node.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("follower status at the stream's start: %+v", before)
		}
		time.Sleep(time.Millisecond)
	}
	// Five times the longest election timeout (20ms ticks, 10 ticks,
	// randomised up to twice that).
	window := 5 * 2 * 10 * 20 * time.Millisecond
	for start := time.Now(); time.Since(start) < window; time.Sleep(5 * time.Millisecond) {
		st := c.ms[f].node.Status()
		if st.Leader != before.Leader || st.Term != before.Term || st.LeaderChanges != before.LeaderChanges {
			t.Fatalf("follower lost its leader during the snapshot stream: %+v, before %+v", st, before)
		}
	}
	if c.ms[f].kv.Restores() != restores {
		t.Fatal("the stream was not held")
	}
	release()
	c.waitCaughtUp(f, l)
	if c.ms[f].kv.Restores() == restores {
		t.Fatal("caught up without the streamed snapshot")
	}
}

// leaveBehind stops a follower f and proposes 100 entries without it, so
// that the leader l compacts past what f has: f catches up by snapshot.
func (c *tcpCluster) leaveBehind(ctx context.Context, t *testing.T) (l, f int) {
	t.Helper()
	l = c.leader()
	f = (l + 1) % 3
	c.propose(ctx, "first")
	c.ms[f].stop(t)
	for i := range 100 {
		c.propose(ctx, fmt.Sprintf("c-%d", i))
	}
	return l, f
}
