package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/server/gossip"
	"github.com/arbor-db/arbor/watch"
)

// server is one member's client-facing side: connections, the read
// barrier, metrics and the member-attrs publisher, over a replicator and
// the state machine it drives.
type server struct {
	cfg     Config
	log     *slog.Logger
	id      uint64 // this member's raft id, the origin of its proposals
	rep     replicator
	sm      *stateMachine
	waits   *waitRegistry
	barrier *readBarrier
	metrics *metrics
	disk    *diskGuard

	seq       atomic.Uint64
	proposeMu sync.Mutex    // orders submit: seq assignment and hand-over to raft
	proposals chan struct{} // semaphore: client writes in flight
	connSlots chan struct{} // semaphore: open connections
	conns     atomic.Int64
	connSeq   atomic.Uint64

	withdrawals *withdrawer
	gossip      *gossip.Gossip // nil without Config.GossipAddr
	// removedIDs are ids of removed members seen gossiping again (their
	// refusal was logged once); the membership loop's own.
	removedIDs map[uint64]bool
	// hashCache holds the last members fingerprint and when (live.since)
	// it was computed.
	hashCache struct {
		h  atomic.Uint64
		at atomic.Int64
	}

	live        *liveness
	renewClient *http.Client
	started     int64 // liveness.since() when the server was built

	// attrsPublished is set once this member's current attributes are
	// applied locally under /arbor/members; /readyz waits for it.
	attrsPublished atomic.Bool
	connWG         sync.WaitGroup

	ctx      context.Context // ends when connections must close
	upgrader websocket.Upgrader
}

// newServer builds a server; it starts nothing. cfg must be defaulted.
func newServer(cfg Config, id uint64, rep replicator, sm *stateMachine, waits *waitRegistry) (*server, error) {
	s := &server{
		cfg:         cfg,
		log:         cfg.Logger,
		id:          id,
		rep:         rep,
		sm:          sm,
		waits:       waits,
		proposals:   make(chan struct{}, cfg.MaxProposals),
		connSlots:   make(chan struct{}, cfg.MaxConnections),
		ctx:         context.Background(),
		disk:        newDiskGuard(cfg.DataDir, cfg.MinFreeBytes, statfsFree, time.Now, cfg.Logger),
		live:        newLiveness(),
		withdrawals: newWithdrawer(),
		removedIDs:  make(map[uint64]bool),
		renewClient: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     time.Minute,
		}},
	}
	s.started = s.live.since()
	sm.onStale = s.noteStaleOrigin
	sm.onSessions = s.onSessions
	sm.onRestore = s.onRestore
	sm.onWatchesLost = func(cs []*conn) {
		for _, c := range cs {
			c.end(endWatchesLost, closeWatchesLost)
		}
	}
	sm.mu.Lock()
	sm.history = watch.NewHistory(cfg.WatchHistoryEvents, cfg.WatchHistoryBytes, sm.applied.Load())
	sm.mu.Unlock()
	if cfg.Version != 0 {
		sm.supported = cfg.Version
	}
	waits.leader = func() uint64 { return s.rep.Status().Leader } // s.rep is set by Run after newServer
	// Sequence numbers start at the clock so that a restarted member never
	// reuses an origin that may still be in the log.
	s.seq.Store(uint64(time.Now().UnixNano()))
	s.upgrader = websocket.Upgrader{
		Subprotocols: []string{wire.Subprotocol},
		// Browsers may connect from any page; there are no cookies to steal.
		CheckOrigin: func(*http.Request) bool { return true },
		// Idle connections hold no write buffer and a small read buffer
		// (requests are small; a large frame is read through it in
		// pieces): most sessions are idle.
		WriteBufferPool: &sync.Pool{},
		ReadBufferSize:  readBufferSize,
	}
	var err error
	if s.metrics, err = newMetrics(s); err != nil {
		return nil, err
	}
	if rep != nil {
		s.setReplicator(rep)
	}
	return s, nil
}

// setReplicator attaches the replicator; Run needs the server's metrics to
// build the raft node, so it attaches the node afterwards.
func (s *server) setReplicator(rep replicator) {
	s.rep = rep
	s.barrier = newReadBarrier(rep.LinearizableRead, s.cfg.RequestTimeout)
}

// handler serves the WebSocket endpoint and the HTTP endpoints.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.EndpointPath, s.serveWS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	mux.Handle("GET /metrics", s.metrics)
	mux.HandleFunc("GET /debug/state", s.serveDebugState)
	mux.HandleFunc("POST "+renewPath, s.serveRenew)
	mux.HandleFunc("GET "+gossipPath, s.serveGossipAddr)
	mux.HandleFunc("POST "+AdminMembersPath, s.serveAdminMembers)
	return mux
}

// serveReady answers 200 once this member has a leader, has applied up to
// its commit index and has applied its own /arbor/members record, so that
// members answers this member's client_url as soon as it is ready.
func (s *server) serveReady(w http.ResponseWriter, _ *http.Request) {
	if why := s.notReady(); why != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready:", why)
		return
	}
	fmt.Fprintln(w, "ok")
}

// versionGrace is how long after start /readyz waits for the cluster
// version to reach this member's: a new cluster raises it within a few
// renewal rounds, and a newcomer should not meet the features of the older
// version; a cluster that stays lower (a member not upgraded yet) is ready
// after it.
const versionGrace = 10 * time.Second

// notReady says why this member is not ready, or "".
func (s *server) notReady() string {
	if !s.rep.Ready() {
		st := s.rep.Status()
		if st.Leader == 0 {
			return "no leader"
		}
		return fmt.Sprintf("applied index %d is behind commit index %d", st.Applied, st.Commit)
	}
	if !s.attrsPublished.Load() {
		return "publishing member attributes"
	}
	if cv := s.sm.clusterVersion.Load(); cv < s.sm.supported && time.Duration(s.live.since()-s.started) < versionGrace {
		return fmt.Sprintf("cluster version %d, waiting for it to reach %d", cv, s.sm.supported)
	}
	return ""
}

func (s *server) serveWS(w http.ResponseWriter, r *http.Request) {
	select {
	case s.connSlots <- struct{}{}:
	default:
		s.metrics.limits.WithLabelValues("connections").Inc()
		http.Error(w, fmt.Sprintf("too many connections: this member serves %d, the most it may (--max-connections); connect to another member", cap(s.connSlots)), http.StatusServiceUnavailable)
		return
	}
	// Counted before the upgrade: Shutdown does not wait for hijacked
	// connections, serveAll's connWG.Wait does.
	s.connWG.Add(1)
	release := func() { s.connWG.Done(); <-s.connSlots }
	if s.ctx.Err() != nil {
		release()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		release()
		return // the upgrader has answered
	}
	// The handler returns at once, so net/http drops its goroutine, its
	// request and its 4 KiB write buffer: an idle connection holds only
	// its own reader and writer.
	go func() {
		defer release()
		s.conns.Add(1)
		defer s.conns.Add(-1)
		s.serve(ws)
	}()
}

// serveAll runs the client side over ln until ctx is done or a component
// fails, then stops in order: hand leadership over, stop accepting, close
// connections, and finally stop raft (raftRun runs it until its ctx ends).
func (s *server) serveAll(ctx context.Context, ln net.Listener) error {
	raftCtx, stopRaft := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRaft()
	connCtx, stopConns := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConns()
	s.ctx = connCtx

	if err := s.startGossip(); err != nil {
		return err
	}
	defer func() {
		if s.gossip != nil {
			_ = s.gossip.Close()
		}
	}()
	httpSrv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	fatal := make(chan error, 2)
	var g errgroup.Group
	g.Go(func() error {
		err := s.rep.Run(raftCtx)
		if err == nil && raftCtx.Err() == nil {
			err = errors.New("server: raft stopped unexpectedly")
		}
		if err != nil {
			fatal <- fmt.Errorf("server: raft: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			fatal <- fmt.Errorf("server: serve clients: %w", err)
		}
		return nil
	})
	g.Go(func() error { return s.barrier.run(connCtx) })
	g.Go(func() error { s.watchLeader(connCtx); return nil })
	g.Go(func() error { s.publishAttrs(connCtx); return nil })
	g.Go(func() error { s.renewLoop(connCtx); return nil })
	g.Go(func() error { s.leaderLoop(connCtx); return nil })
	g.Go(func() error { s.withdrawLoop(connCtx.Done()); return nil })
	g.Go(func() error { s.membershipLoop(connCtx); return nil })
	if s.cfg.OnReady != nil {
		s.cfg.OnReady(ln.Addr().String())
	}
	s.log.Info("serving clients", "addr", ln.Addr().String(), "member", s.cfg.Name)

	var err error
	select {
	case <-ctx.Done():
		if s.cfg.NoHandOver {
			break
		}
		tctx, cancel := context.WithTimeout(context.Background(), transferTimeout)
		if terr := s.rep.TransferLeadership(tctx); terr != nil {
			s.log.Warn("leadership transfer failed", "err", terr)
		}
		cancel()
	case err = <-fatal:
		s.log.Error("member stopping", "err", err)
	}
	stopConns()
	sctx, cancel := context.WithTimeout(context.Background(), transferTimeout)
	_ = httpSrv.Shutdown(sctx)
	cancel()
	_ = httpSrv.Close()
	s.connWG.Wait()
	s.renewClient.CloseIdleConnections()
	stopRaft()
	_ = g.Wait()
	if err == nil {
		select {
		case err = <-fatal:
		default:
		}
	}
	return err
}
