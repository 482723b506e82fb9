package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/arbor-db/arbor/server"
)

// serve runs a member until ctx is done.
func serve(ctx context.Context, g *globals, e env, f *memberFlags, dev bool) error {
	// The listeners are bound here, not by server.Run, so that a busy
	// address is reported as the flag that names it.
	clientLn, err := listen("client-addr", f.clientAddr)
	if err != nil {
		return err
	}
	peerLn, err := listen("peer-addr", f.peerAddr)
	if err != nil {
		clientLn.Close()
		return err
	}
	// memberlist binds the gossip port itself (TCP and UDP); a port in use
	// is said here the way the others are.
	gossipLn, err := listen("gossip-addr", f.gossipAddr)
	if err != nil {
		clientLn.Close()
		peerLn.Close()
		return err
	}
	gossipLn.Close()
	cfg := server.Config{
		Name:                    f.name,
		DataDir:                 f.dataDir,
		ClientAddr:              f.clientAddr,
		PeerAddr:                f.peerAddr,
		GossipAddr:              f.gossipAddr,
		AdvertiseGossipAddr:     f.advertiseGossipAddr,
		GossipKey:               f.key,
		ClientListener:          clientLn,
		PeerListener:            peerLn,
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
		MaxWatchesPerSession:    f.maxWatches,
		WatchHistoryEvents:      f.historyEvents,
		WatchHistoryBytes:       f.historyBytes,
		MaxQueuedEvents:         f.queuedEvents,
		MaxQueuedEventBytes:     f.queuedEventBytes,
		Logger:                  g.logger(e.stderr),
	}
	if f.join != "" {
		cfg.Join = strings.Split(f.join, ",")
	}
	for _, p := range f.peers {
		cfg.InitialCluster = append(cfg.InitialCluster, server.Peer{Name: p.name, PeerURL: p.addr})
	}
	who := "arbor server " + f.name
	if dev {
		who = "arbor dev"
	}
	// OnReady means the listener is bound; "ready" is promised only once
	// the member can serve writes, which /readyz knows.
	waitCtx, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	var waiting sync.WaitGroup
	cfg.OnReady = func(addr string) {
		waiting.Go(func() {
			if !awaitReady(waitCtx, addr) {
				return
			}
			if dev {
				fmt.Fprintf(e.stdout, "arbor dev: ready; clients connect to ws://%s/v1 (arbor --endpoints %s ...); data in %s\n",
					addr, addr, f.dataDir)
			} else {
				fmt.Fprintf(e.stdout, "%s: ready; clients connect to ws://%s/v1\n", who, addr)
			}
		})
	}
	err = server.Run(ctx, cfg)
	stopWaiting()
	waiting.Wait()
	if errors.Is(err, server.ErrRemoved) {
		// An operator's doing, not a failure of the member; still not a
		// clean stop (status 1), so that a supervisor does not restart it
		// into a cluster that no longer has it.
		return &exitError{code: exitFail, msg: fmt.Sprintf("REMOVED: %s was removed from the cluster; to join again, start it with an empty --data-dir and --join (data kept in %s)", who, f.dataDir)}
	}
	if err != nil {
		return &exitError{code: exitFail, msg: "INTERNAL: " + who + " stopped: " + err.Error()}
	}
	// One line, whatever the log level, so that a member's end is never
	// silent: it stops only when told to.
	fmt.Fprintf(e.stdout, "%s: stopped (%v); data kept in %s\n", who, context.Cause(ctx), f.dataDir)
	return nil
}

// listen binds addr for the flag that names it. Every failure is a
// start-up problem the user fixes by choosing another address.
func listen(flag, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, &exitError{code: exitUsage, msg: fmt.Sprintf(
			"--%s %s is in use: another arbor, or another program, listens there; stop it or choose another address", flag, addr)}
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return nil, &exitError{code: exitUsage, msg: fmt.Sprintf(
			"--%s %s: this machine has no such address", flag, addr)}
	case errors.Is(err, syscall.EACCES):
		return nil, &exitError{code: exitUsage, msg: fmt.Sprintf(
			"--%s %s: not allowed to listen there (ports below 1024 need privileges)", flag, addr)}
	}
	return nil, &exitError{code: exitUsage, msg: fmt.Sprintf("--%s %s: cannot listen there: %v", flag, addr, err)}
}

// awaitReady polls the member's /readyz until it answers 200 (true) or ctx
// ends (false). There is no other deadline: a member of a cluster waits
// for its quorum for as long as it takes.
func awaitReady(ctx context.Context, addr string) bool {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		if err != nil {
			return false
		}
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}
