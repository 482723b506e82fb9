package raftnode

// Peer wire format. A dialer sends a handshake and waits for one status
// byte (0 ok, 1 wrong magic or cluster token, 2 wrong target id):
//
//	magic "ARBRAFT1" | cluster uint64 | from uint64 | to uint64 | urlLen uint16 | url
//
// then frames, each: type byte | length uint32 | marshalled raftpb.Message.
// A frame of type snapshot is followed by size uint64 and size bytes of the
// snapshot file. Integers are big-endian. Connections are one-way: the
// dialer only writes, the acceptor only reads.
//
// Each peer has one long-lived connection for raft messages and, for each
// snapshot, a connection of its own that carries that one snapshot frame
// and is closed: a stream of gigabytes to a lagging follower must not hold
// back the heartbeats and appends queued behind it (the follower would
// start an election). The acceptor serves both kinds alike.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"
)

const (
	handshakeMagic  = "ARBRAFT1"
	maxFrameSize    = 64 << 20
	frameMsg        = 1
	frameSnap       = 2
	peerQueueLen    = 1024     // frames waiting for a peer, at most
	maxPendingBytes = 64 << 20 // and their bytes: a frame is a copy
	snapQueueLen    = 4        // raft sends a follower one snapshot at a time
	aliveWindow     = 3 * time.Second
	dialTimeout     = time.Second
	ioTimeout       = 10 * time.Second
	minBackoff      = 50 * time.Millisecond
	maxBackoff      = 2 * time.Second
)

// ErrHandshake means a peer connection was refused.
var ErrHandshake = errors.New("raftnode: peer handshake rejected")

type tcpTransport struct {
	id         uint64
	selfURL    string
	cluster    uint64
	listenAddr string
	ln         net.Listener
	log        *slog.Logger

	mu       sync.Mutex
	peers    map[uint64]*tcpPeer
	removed  map[uint64]bool
	inbound  map[net.Conn]struct{}
	running  bool
	ctx      context.Context
	h        TransportHandler
	wg       sync.WaitGroup
	lastSeen map[uint64]time.Time
}

type tcpPeer struct {
	id        uint64
	addr      string       // guarded by tcpTransport.mu
	connected bool         // guarded by tcpTransport.mu: an outgoing stream is up
	snapq     chan Message // MsgSnap, each streamed on its own connection
	stop      chan struct{}
	kick      chan struct{} // capacity 1: frames are pending for the writer

	wmu sync.Mutex
	out outStream // guarded by wmu
}

// outStream is a peer's outbound raft stream. The raft goroutine encodes
// its messages into pending and, when the writer is idle, writes them to
// the socket itself without blocking: a message then leaves in the Ready
// that made it, with no hand-off to another goroutine on the way (on a
// loaded machine, waking the writer costs more than the write). What the
// socket does not take at once is the writer's, which blocks for it.
type outStream struct {
	pending []byte // encoded frames not yet written, whole but the first
	frames  int    // in pending (bounded by peerQueueLen)
	spare   []byte // the writer's last buffer, for reuse
	writing bool   // the writer is writing: frames queue behind it
	// raw is the connection that is up, for non-blocking writes; nil while
	// there is none.
	raw syscall.RawConn
}

func newTCPTransport(id uint64, cfg Config, log *slog.Logger) *tcpTransport {
	h := fnv.New64a()
	h.Write([]byte(cfg.ClusterToken))
	return &tcpTransport{
		id:         id,
		selfURL:    cfg.AdvertisePeerAddr,
		cluster:    h.Sum64(),
		listenAddr: cfg.ListenPeerAddr,
		ln:         cfg.PeerListener,
		log:        log.With("component", "transport"),
		peers:      map[uint64]*tcpPeer{},
		removed:    map[uint64]bool{},
		inbound:    map[net.Conn]struct{}{},
		lastSeen:   map[uint64]time.Time{},
	}
}

func (t *tcpTransport) Run(ctx context.Context, h TransportHandler) error {
	ln := t.ln
	if ln == nil && t.listenAddr != "" {
		var err error
		if ln, err = net.Listen("tcp", t.listenAddr); err != nil {
			return fmt.Errorf("listen %s: %w", t.listenAddr, err)
		}
	}
	t.mu.Lock()
	t.ctx, t.h, t.running = ctx, h, true
	for _, p := range t.peers {
		t.startPeer(p)
	}
	if ln != nil {
		t.wg.Add(1)
		go t.acceptLoop(ctx, ln)
	}
	t.mu.Unlock()

	<-ctx.Done()
	if ln != nil {
		ln.Close()
	}
	t.mu.Lock()
	t.running = false
	for c := range t.inbound {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// startPeer runs p's writers; t.mu is held.
func (t *tcpTransport) startPeer(p *tcpPeer) {
	t.wg.Add(2)
	go t.runPeer(t.ctx, p)
	go t.runSnapshots(t.ctx, p)
}

func (t *tcpTransport) AddPeer(id uint64, peerURL string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.removed, id)
	if p, ok := t.peers[id]; ok {
		if peerURL != "" {
			p.addr = peerURL
		}
		return
	}
	p := &tcpPeer{
		id: id, addr: peerURL, stop: make(chan struct{}), kick: make(chan struct{}, 1),
		snapq: make(chan Message, snapQueueLen),
	}
	t.peers[id] = p
	if t.running {
		t.startPeer(p)
	}
}

func (t *tcpTransport) RemovePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removed[id] = true
	if p, ok := t.peers[id]; ok {
		close(p.stop)
		delete(t.peers, id)
	}
}

// Alive: a frame arrived from id recently, or our stream to it is up (a
// follower hears only from the leader).
func (t *tcpTransport) Alive(id uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.peers[id]; ok && p.connected {
		return true
	}
	seen, ok := t.lastSeen[id]
	return ok && time.Since(seen) < aliveWindow
}

func (t *tcpTransport) setConnected(p *tcpPeer, v bool) {
	t.mu.Lock()
	p.connected = v
	t.mu.Unlock()
}

func (t *tcpTransport) Send(msgs []Message) {
	if len(msgs) == 0 {
		return
	}
	// The peers are looked up under t.mu, and written to without it: the
	// inbound readers take it for every frame.
	peers := make([]*tcpPeer, len(msgs))
	t.mu.Lock()
	for i, m := range msgs {
		peers[i] = t.peers[m.To]
	}
	h := t.h
	t.mu.Unlock()
	var touched []*tcpPeer
	for i, m := range msgs {
		p := peers[i]
		queued := false
		switch {
		case p == nil:
		case IsSnapshotMessage(m):
			select {
			case p.snapq <- m:
				queued = true
			default:
			}
		default:
			if queued = p.enqueue(&msgs[i], t.log); queued && !slices.Contains(touched, p) {
				touched = append(touched, p)
			}
		}
		// Dropped: raft retries everything except a snapshot, whose
		// failure it must hear about.
		if !queued && IsSnapshotMessage(m) && h != nil {
			h.ReportSnapshot(m.To, true)
		}
	}
	for _, p := range touched {
		p.flush()
	}
}

// enqueue encodes m behind p's pending frames; false if p's queue is full.
func (p *tcpPeer) enqueue(m *Message, log *slog.Logger) bool {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.out.frames >= peerQueueLen || len(p.out.pending) >= maxPendingBytes {
		return false
	}
	b, err := appendFrame(p.out.pending, frameMsg, m)
	if err != nil {
		log.Warn("cannot send raft message", "peer", p.id, "type", m.Type.String(), "err", err)
		return false
	}
	p.out.pending = b
	p.out.frames++
	return true
}

// flush writes what the socket takes of p's pending frames now, without
// blocking, unless the writer is at it; the rest is left to the writer.
func (p *tcpPeer) flush() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	o := &p.out
	if len(o.pending) == 0 {
		return
	}
	if !o.writing && o.raw != nil {
		n := writeNonBlocking(o.raw, o.pending)
		if n == len(o.pending) {
			o.pending, o.frames = o.pending[:0], 0
			return
		}
		o.pending = append(o.pending[:0], o.pending[n:]...)
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// writeNonBlocking writes what the socket takes of b at once and returns
// how much that was.
func writeNonBlocking(raw syscall.RawConn, b []byte) int {
	n := 0
	raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			k, err := syscall.Write(int(fd), b[n:])
			if err == syscall.EINTR {
				continue
			}
			if k <= 0 || err != nil {
				break
			}
			n += k
		}
		return true // never wait for the socket: the writer will
	})
	return n
}

func (t *tcpTransport) addrOf(p *tcpPeer) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return p.addr
}

func (t *tcpTransport) runPeer(ctx context.Context, p *tcpPeer) {
	defer t.wg.Done()
	backoff := minBackoff
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.stop:
			return
		default:
		}
		conn, err := t.dial(ctx, p)
		if err == nil {
			backoff = minBackoff
			t.setConnected(p, true)
			err = t.writeLoop(ctx, p, conn)
			t.setConnected(p, false)
			conn.Close()
		}
		if err == nil {
			return
		}
		t.log.Debug("peer connection failed", "peer", p.id, "err", err)
		t.h.ReportUnreachable(p.id)
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
		case <-p.stop:
		case <-timer.C:
		}
		timer.Stop()
		backoff = min(2*backoff, maxBackoff)
	}
}

func (t *tcpTransport) dial(ctx context.Context, p *tcpPeer) (net.Conn, error) {
	addr := t.addrOf(p)
	if addr == "" {
		return nil, fmt.Errorf("no address for peer %x", p.id)
	}
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	hs := []byte(handshakeMagic)
	hs = binary.BigEndian.AppendUint64(hs, t.cluster)
	hs = binary.BigEndian.AppendUint64(hs, t.id)
	hs = binary.BigEndian.AppendUint64(hs, p.id)
	hs = binary.BigEndian.AppendUint16(hs, uint16(len(t.selfURL)))
	hs = append(hs, t.selfURL...)
	conn.SetDeadline(time.Now().Add(ioTimeout))
	var status [1]byte
	if _, err = conn.Write(hs); err == nil {
		_, err = io.ReadFull(conn, status[:])
	}
	if err == nil && status[0] != 0 {
		err = fmt.Errorf("%w by %s: status %d", ErrHandshake, addr, status[0])
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// deadlineWriter refreshes the write deadline on every write, so a stalled
// peer fails the connection while a long snapshot stream keeps going.
type deadlineWriter struct{ c net.Conn }

func (d deadlineWriter) Write(p []byte) (int, error) {
	d.c.SetWriteDeadline(time.Now().Add(ioTimeout))
	return d.c.Write(p)
}

// writeLoop writes what the raft goroutine could not write at once (see
// outStream). It returns nil when asked to stop.
func (t *tcpTransport) writeLoop(ctx context.Context, p *tcpPeer, conn net.Conn) error {
	var raw syscall.RawConn
	if sc, ok := conn.(syscall.Conn); ok {
		raw, _ = sc.SyscallConn()
	}
	p.wmu.Lock()
	p.out.raw = raw
	p.wmu.Unlock()
	defer func() {
		// The last frame may be half written: the next connection starts
		// with the frames queued after this one ended (raft resends).
		p.wmu.Lock()
		p.out.raw, p.out.writing = nil, false
		p.out.pending, p.out.frames = p.out.pending[:0], 0
		p.wmu.Unlock()
	}()
	for {
		p.wmu.Lock()
		buf := p.out.pending
		if len(buf) == 0 {
			p.wmu.Unlock()
			select {
			case <-ctx.Done():
				return nil
			case <-p.stop:
				return nil
			case <-p.kick:
			}
			continue
		}
		p.out.pending, p.out.spare, p.out.frames = p.out.spare[:0], nil, 0
		p.out.writing = true
		p.wmu.Unlock()
		// The deadline is set only while the writer writes: a non-blocking
		// write of the raft goroutine must not find an expired one.
		conn.SetWriteDeadline(time.Now().Add(ioTimeout))
		_, err := conn.Write(buf)
		conn.SetWriteDeadline(time.Time{})
		p.wmu.Lock()
		p.out.writing = false
		if cap(buf) <= 1<<20 {
			p.out.spare = buf[:0]
		}
		p.wmu.Unlock()
		if err != nil {
			return err
		}
	}
}

// appendFrame appends m as a frame of type typ to b.
func appendFrame(b []byte, typ byte, m *Message) ([]byte, error) {
	n := messageSize(m)
	if n > maxFrameSize {
		return b, fmt.Errorf("message of %d bytes exceeds the frame limit", n)
	}
	start := len(b)
	b = append(b, typ, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[start+1:], uint32(n))
	b, err := appendMessage(b, m, n)
	if err != nil {
		return b[:start], err
	}
	return b, nil
}

func writeFrame(w io.Writer, typ byte, m Message) error {
	b, err := marshalMessage(&m)
	if err != nil {
		return err
	}
	if len(b) > maxFrameSize {
		return fmt.Errorf("message of %d bytes exceeds the frame limit", len(b))
	}
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// runSnapshots streams p's snapshots one at a time, each on a connection
// of its own, and reports how each ended.
func (t *tcpTransport) runSnapshots(ctx context.Context, p *tcpPeer) {
	defer t.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.stop:
			return
		case m := <-p.snapq:
			err := t.sendSnapshot(ctx, p, m)
			if err != nil {
				_, index := snapshotRef(m)
				t.log.Warn("sending snapshot failed", "peer", p.id, "index", index, "err", err)
			}
			t.h.ReportSnapshot(m.To, err != nil)
		}
	}
}

// sendSnapshot dials p and streams m's snapshot file. Stopping the
// transport or removing p closes the connection, which ends the stream.
func (t *tcpTransport) sendSnapshot(ctx context.Context, p *tcpPeer, m Message) error {
	conn, err := t.dial(ctx, p)
	if err != nil {
		return err
	}
	defer conn.Close()
	stopped := make(chan struct{})
	defer close(stopped)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		select {
		case <-ctx.Done():
		case <-p.stop:
		case <-stopped:
			return
		}
		conn.Close()
	}()
	return t.writeSnapshot(bufio.NewWriterSize(deadlineWriter{conn}, 64<<10), m)
}

func (t *tcpTransport) writeSnapshot(bw *bufio.Writer, m Message) error {
	rc, size, err := t.h.OpenSnapshot(m)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := writeFrame(bw, frameSnap, m); err != nil {
		return err
	}
	var sb [8]byte
	binary.BigEndian.PutUint64(sb[:], uint64(size))
	if _, err := bw.Write(sb[:]); err != nil {
		return err
	}
	if _, err := io.CopyN(bw, rc, size); err != nil {
		return err
	}
	return bw.Flush()
}
