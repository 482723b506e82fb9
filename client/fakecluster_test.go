package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// fakeCluster is several fake members sharing one tree and session table,
// reached over in-memory pipes (net.Pipe), so that it also runs inside a
// testing/synctest bubble. Dial them with cfg.NetDialContext = fc.dial.
type fakeCluster struct {
	*fakeData
	members []*fakeServer
}

// newFakeCluster starts n members named m1..mN, at endpoints "m1:7000"...
func newFakeCluster(t *testing.T, n int) *fakeCluster {
	t.Helper()
	fc := &fakeCluster{fakeData: newFakeData()}
	for i := range n {
		name := fmt.Sprintf("m%d", i+1)
		f := &fakeServer{fakeData: fc.fakeData, name: name, logf: t.Logf,
			conns: make(map[*websocket.Conn]bool), once: make(map[string]string)}
		f.ln = &pipeListener{addr: name + ":7000", conns: make(chan net.Conn), done: make(chan struct{})}
		f.http = &http.Server{Handler: f}
		f.wg.Go(func() { f.http.Serve(f.ln) })
		fc.members = append(fc.members, f)
	}
	t.Cleanup(func() {
		for _, f := range fc.members {
			f.shutdown()
		}
	})
	return fc
}

func (fc *fakeCluster) endpoints() []string {
	var eps []string
	for _, f := range fc.members {
		eps = append(eps, f.addr())
	}
	return eps
}

func (fc *fakeCluster) member(name string) *fakeServer {
	for _, f := range fc.members {
		if f.name == name {
			return f
		}
	}
	return nil
}

// each changes the knobs of every member.
func (fc *fakeCluster) each(change func(f *fakeServer)) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for _, f := range fc.members {
		change(f)
	}
}

var errRefused = errors.New("fake: connection refused")

// dial connects to a member through a pipe, as net.Dialer would over TCP.
func (fc *fakeCluster) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	for _, f := range fc.members {
		if f.ln.addr != addr {
			continue
		}
		client, server := net.Pipe()
		select {
		case f.ln.conns <- server:
			return client, nil
		case <-f.ln.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("dial %s %s: %w", network, addr, errRefused)
}

// pipeListener hands the server ends of fakeCluster.dial's pipes to an
// http.Server.
type pipeListener struct {
	addr  string
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr(l.addr) }

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }
