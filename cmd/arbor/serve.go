package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/arbor-db/arbor/server"
)

// serve runs a member until ctx is done.
func serve(ctx context.Context, g *globals, e env, f *memberFlags, dev bool) error {
	cfg := server.Config{
		Name:                    f.name,
		DataDir:                 f.dataDir,
		ClientAddr:              f.clientAddr,
		PeerAddr:                f.peerAddr,
		GossipAddr:              f.gossipAddr,
		AdvertiseClientAddr:     f.advertiseClientAddr,
		AdvertisePeerAddr:       f.advertisePeerAddr,
		Learner:                 f.learner,
		MaxFrameBytes:           f.maxFrameBytes,
		MaxDataBytes:            f.maxDataBytes,
		SnapshotEntries:         f.snapshotEntries,
		MinFreeBytes:            f.minFreeBytes,
		MinSessionMs:            f.minSession.Milliseconds(),
		MaxSessionMs:            f.maxSession.Milliseconds(),
		MaxSessions:             f.maxSessions,
		MaxEphemeralsPerSession: f.maxEphemerals,
		MaxPendingPerConn:       f.maxPending,
		MaxConnections:          f.maxConns,
		Logger:                  g.logger(e.stderr),
	}
	if f.join != "" {
		cfg.Join = strings.Split(f.join, ",")
	}
	for _, p := range f.peers {
		cfg.InitialCluster = append(cfg.InitialCluster, server.Peer{Name: p.name, PeerURL: p.addr})
	}
	cfg.OnReady = func(addr string) {
		if dev {
			fmt.Fprintf(e.stdout, "arbor dev: ready; clients connect to ws://%s%s (arbor --endpoints %s ...); data in %s\n",
				addr, "/v1", addr, f.dataDir)
		} else {
			fmt.Fprintf(e.stdout, "arbor server %s: ready; clients connect to ws://%s/v1\n", f.name, addr)
		}
	}
	if err := server.Run(ctx, cfg); err != nil {
		return &exitError{code: exitFail, msg: "INTERNAL: member " + f.name + " stopped: " + err.Error()}
	}
	return nil
}
