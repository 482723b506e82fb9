package raftnode_test

import (
	"context"
	"fmt"
	"net"
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

func startTCP(t *testing.T, m *tcpMember, ln net.Listener) {
	t.Helper()
	m.cfg.PeerListener = ln
	m.kv = rafttest.NewKV()
	n, err := raftnode.New(m.cfg, m.kv)
	if err != nil {
		t.Fatal(err)
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

func TestTCPClusterSnapshotCatchUp(t *testing.T) {
	var lns []net.Listener
	var peers []raftnode.Peer
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		peers = append(peers, raftnode.Peer{Name: fmt.Sprintf("t%d", i), PeerURL: ln.Addr().String()})
	}
	ms := make([]*tcpMember, 3)
	for i := range ms {
		ms[i] = &tcpMember{cfg: raftnode.Config{
			Name: peers[i].Name, DataDir: t.TempDir(), InitialCluster: peers,
			SnapshotEntries: 20, CompactKeepEntries: 10, TickInterval: 20 * time.Millisecond,
		}}
		startTCP(t, ms[i], lns[i])
	}
	defer func() {
		for _, m := range ms {
			m.stop(t)
		}
	}()
	leader := func() int {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			for i, m := range ms {
				if m.node.Status().IsLeader {
					return i
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatal("no leader")
		return -1
	}
	ctx := ctxT(t, 30*time.Second)
	propose := func(cmd string) {
		t.Helper()
		for ctx.Err() == nil {
			l := leader()
			if err := ms[l].node.Propose(ctx, []byte(cmd)); err == nil {
				for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
					if ms[l].kv.Has(cmd) {
						return
					}
				}
			}
		}
		t.Fatalf("propose %s: %v", cmd, ctx.Err())
	}
	l := leader()
	f := (l + 1) % 3
	propose("first")
	ms[f].stop(t)
	for i := range 100 {
		propose(fmt.Sprintf("c-%d", i))
	}
	ln, err := net.Listen("tcp", peers[f].PeerURL)
	if err != nil {
		t.Fatal(err)
	}
	startTCP(t, ms[f], ln)
	want := ms[l].kv.Applied()
	for end := time.Now().Add(20 * time.Second); ms[f].kv.Applied() < want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("restarted follower applied %d, leader %d", ms[f].kv.Applied(), want)
		}
	}
	if ms[f].kv.Restores() == 0 {
		t.Fatal("follower did not install a streamed snapshot")
	}
	if ms[f].kv.Hash(want) != ms[l].kv.Hash(want) {
		t.Fatal("follower applied a different sequence")
	}
	for _, m := range ms[f].node.Members() {
		if !m.Alive {
			t.Errorf("member %+v not alive", m)
		}
	}
}
