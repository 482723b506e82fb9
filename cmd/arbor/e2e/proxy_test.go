package e2e

import (
	"net"
	"sync"
	"testing"
	"time"
)

// proxy forwards TCP connections from a loopback port to one upstream
// address until it is cut. Cut, it forwards nothing either way and keeps
// every socket open, accepting new connections and never answering them: a
// network that drops packets (a black hole), not one that refuses them.
// Neither side sees an error; each just stops hearing from the other.
type proxy struct {
	ln       net.Listener
	upstream string
	wg       sync.WaitGroup // the accept loop and every pipe

	mu     sync.Mutex
	cut    bool
	closed bool
	conns  []net.Conn
	sent   time.Time // when bytes from a client were last passed upstream
}

// startProxy listens on a free loopback port, forwarding to upstream, until
// the end of the test.
func startProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// blackhole cuts the proxy.
func (p *proxy) blackhole() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
}

func (p *proxy) isCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// track remembers c, to close at the end; false once the proxy is closed.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns = append(p.conns, c)
	return true
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if !p.track(down) {
			down.Close()
			return
		}
		if p.isCut() {
			p.wg.Add(1)
			go p.pipe(down, nil, false)
			continue
		}
		up, err := net.DialTimeout("tcp", p.upstream, 2*time.Second)
		if err != nil {
			down.Close()
			continue
		}
		if !p.track(up) {
			up.Close()
			return
		}
		p.wg.Add(2)
		go p.pipe(down, up, true)
		go p.pipe(up, down, false)
	}
}

// pipe copies src to dst until src ends; once cut it reads and drops
// (always, when dst is nil). Before the cut an end passes through (dst is
// closed too); after it, nothing does. fromClient says that src is a client.
func (p *proxy) pipe(src, dst net.Conn, fromClient bool) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && dst != nil && !p.isCut() {
			if fromClient {
				// Before the write: the member cannot read them sooner.
				p.mu.Lock()
				p.sent = time.Now()
				p.mu.Unlock()
			}
			if _, werr := dst.Write(buf[:n]); werr != nil && !p.isCut() {
				src.Close()
				dst.Close()
				return
			}
		}
		if err != nil {
			if dst != nil && !p.isCut() {
				dst.Close()
			}
			return
		}
	}
}

// lastSent returns when bytes from a client were last passed upstream (just
// before): the cluster cannot have heard from a client behind the proxy any
// earlier.
func (p *proxy) lastSent() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// close stops accepting, closes every connection and waits for the pipes.
func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
}
