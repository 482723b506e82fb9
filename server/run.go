package server

import (
	"context"
	"fmt"
	"net"

	"github.com/arbor-db/arbor/raftnode"
)

// ErrRemoved is what Run's error matches when the cluster removed this
// member: it stops. To join again it starts with an empty data dir and Join.
var ErrRemoved = raftnode.ErrRemoved

// Run serves a member until ctx is done (then a leader hands leadership
// over and the member stops cleanly, returning nil) or a fatal error
// (storage, listen, ErrRemoved), which it returns.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	ln := cfg.ClientListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.ClientAddr); err != nil {
			if cfg.PeerListener != nil {
				cfg.PeerListener.Close()
			}
			return fmt.Errorf("server: listen for clients: %w", err)
		}
	}
	defer ln.Close()
	if cfg.AdvertiseClientAddr == "" {
		cfg.AdvertiseClientAddr = ln.Addr().String()
	}
	peers := make([]raftnode.Peer, len(cfg.InitialCluster))
	for i, p := range cfg.InitialCluster {
		peers[i] = raftnode.Peer{Name: p.Name, PeerURL: p.PeerURL}
	}
	if len(peers) == 0 && len(cfg.Join) == 0 {
		peers = []raftnode.Peer{{Name: cfg.Name, PeerURL: cfg.AdvertisePeerAddr}}
	}

	waits := newWaitRegistry()
	sm := newStateMachine(cfg.Logger, waits)
	// The metrics hooks need the server, and the server needs the node:
	// build the server with a placeholder node first.
	s, err := newServer(cfg, raftnode.MemberID(cfg.Name), nil, sm, waits)
	if err != nil {
		if cfg.PeerListener != nil {
			cfg.PeerListener.Close()
		}
		return err
	}
	node, err := raftnode.New(raftnode.Config{
		Name:              cfg.Name,
		DataDir:           cfg.DataDir,
		ListenPeerAddr:    cfg.PeerAddr,
		AdvertisePeerAddr: cfg.AdvertisePeerAddr,
		InitialCluster:    peers,
		Join:              len(cfg.Join) > 0,
		FreshID:           len(cfg.Join) > 0,
		SnapshotEntries:   cfg.SnapshotEntries,
		TickInterval:      cfg.TickInterval,
		ElectionTicks:     cfg.ElectionTicks,
		NoSync:            cfg.NoSync,
		Logger:            cfg.Logger,
		PeerListener:      cfg.PeerListener,
		Transport:         cfg.RaftTransport,
		Metrics:           s.metrics.raftMetrics(),
	}, sm)
	if err != nil {
		if cfg.PeerListener != nil {
			cfg.PeerListener.Close()
		}
		return fmt.Errorf("server: open raft node: %w", err)
	}
	s.id = node.ID() // a joiner's may be its own incarnation's, not its name's
	s.setReplicator(node)
	return s.serveAll(ctx, ln)
}
