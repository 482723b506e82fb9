package arbortest

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

// readyTimeout bounds how long New waits for every member to be ready.
const readyTimeout = 30 * time.Second

// Option changes how New, Start and StartCluster run members.
type Option func(*options)

type options struct {
	logger *slog.Logger
}

// WithLogger sends the members' logs to l (each line carries the member's
// name); by default they are discarded.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Server is a running in-process cluster of one or more members.
type Server struct {
	dir     string
	addrs   []string
	members []*member
	closer  sync.Once
	err     error
}

type member struct {
	name   string
	cancel context.CancelFunc
	done   chan error // server.Run's result, then closed
}

// Start runs a single-member cluster for the test and stops it with
// t.Cleanup. It fails the test if the member cannot start.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	return StartCluster(t, 1, opts...)
}

// StartCluster runs a cluster of members members for the test and stops it
// with t.Cleanup. It fails the test if a member cannot start.
func StartCluster(t testing.TB, members int, opts ...Option) *Server {
	t.Helper()
	s, err := New(members, opts...)
	if err != nil {
		t.Fatalf("arbortest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("arbortest: %v", err)
		}
	})
	return s
}

// New runs a cluster of members members and returns once every one is
// ready. The caller must call Close.
func New(members int, opts ...Option) (*Server, error) {
	if members < 1 {
		return nil, fmt.Errorf("a cluster needs at least one member, not %d", members)
	}
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	dir, err := os.MkdirTemp("", "arbortest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir}
	// Every listener is bound before any member starts, so the initial
	// cluster names real addresses and no port can be taken in between.
	clientLns, peerLns, err := listenAll(members)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	peers := make([]server.Peer, members)
	for i := range members {
		peers[i] = server.Peer{Name: fmt.Sprintf("m%d", i+1), PeerURL: peerLns[i].Addr().String()}
		s.addrs = append(s.addrs, clientLns[i].Addr().String())
	}
	for i, p := range peers {
		ctx, cancel := context.WithCancel(context.Background())
		m := &member{name: p.Name, cancel: cancel, done: make(chan error, 1)}
		s.members = append(s.members, m)
		cfg := server.Config{
			Name:           p.Name,
			DataDir:        filepath.Join(dir, p.Name),
			ClientListener: clientLns[i],
			PeerListener:   peerLns[i],
			InitialCluster: peers,
			NoSync:         true, // a test's data need not survive a power cut
			TickInterval:   10 * time.Millisecond,
			// Close stops every member at once: a leader handing over
			// to a member that is stopping too would only wait out
			// the hand-over's timeout.
			NoHandOver: true,
			Logger:     o.logger.With("member", p.Name),
		}
		go func() {
			m.done <- server.Run(ctx, cfg)
			close(m.done)
		}()
	}
	if err := s.waitReady(); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// listenAll binds a client and a peer listener on loopback for each member.
func listenAll(n int) (clientLns, peerLns []net.Listener, err error) {
	closeAll := func() {
		for _, l := range append(clientLns, peerLns...) {
			l.Close()
		}
	}
	for range n {
		for _, lns := range []*[]net.Listener{&clientLns, &peerLns} {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			*lns = append(*lns, l)
		}
	}
	return clientLns, peerLns, nil
}

// waitReady polls every member's /readyz until it answers 200, a member
// stops, or readyTimeout passes.
func (s *Server) waitReady() error {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(readyTimeout)
	for i, addr := range s.addrs {
		for !ready(hc, addr) {
			select {
			case err := <-s.members[i].done:
				return fmt.Errorf("member %s stopped before it was ready: %v", s.members[i].name, err)
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("member %s not ready within %v", s.members[i].name, readyTimeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

func ready(hc *http.Client, addr string) bool {
	resp, err := hc.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Endpoints returns every member's client address (HOST:PORT), as
// client.Config.Endpoints wants them.
func (s *Server) Endpoints() []string { return append([]string(nil), s.addrs...) }

// Addr returns the first member's client address: the one to use with a
// single member (ws://ADDR/v1, http://ADDR/metrics).
func (s *Server) Addr() string { return s.addrs[0] }

// Close stops every member, waits for them and removes their data. It
// returns the first error a member stopped with; calling it again returns
// the same.
func (s *Server) Close() error {
	s.closer.Do(func() {
		for _, m := range s.members {
			m.cancel()
		}
		var errs []error
		for _, m := range s.members {
			if err := <-m.done; err != nil {
				errs = append(errs, fmt.Errorf("member %s: %w", m.name, err))
			}
		}
		errs = append(errs, os.RemoveAll(s.dir))
		s.err = errors.Join(errs...)
	})
	return s.err
}
