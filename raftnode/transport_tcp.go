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
	"sync"
	"time"
)

const (
	handshakeMagic = "ARBRAFT1"
	maxFrameSize   = 64 << 20
	frameMsg       = 1
	frameSnap      = 2
	peerQueueLen   = 1024
	snapQueueLen   = 4 // raft sends a follower one snapshot at a time
	aliveWindow    = 3 * time.Second
	dialTimeout    = time.Second
	ioTimeout      = 10 * time.Second
	minBackoff     = 50 * time.Millisecond
	maxBackoff     = 2 * time.Second
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
	q         chan Message // raft messages but MsgSnap
	snapq     chan Message // MsgSnap, each streamed on its own connection
	stop      chan struct{}
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
		id: id, addr: peerURL, stop: make(chan struct{}),
		q: make(chan Message, peerQueueLen), snapq: make(chan Message, snapQueueLen),
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
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range msgs {
		p, ok := t.peers[m.To]
		if ok {
			q := p.q
			if IsSnapshotMessage(m) {
				q = p.snapq
			}
			select {
			case q <- m:
				continue
			default:
			}
		}
		// Dropped: raft retries everything except a snapshot, whose
		// failure it must hear about.
		if IsSnapshotMessage(m) && t.h != nil {
			t.h.ReportSnapshot(m.To, true)
		}
	}
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

// writeLoop sends queued messages, flushing whenever the queue is empty.
// It returns nil when asked to stop.
func (t *tcpTransport) writeLoop(ctx context.Context, p *tcpPeer, conn net.Conn) error {
	bw := bufio.NewWriterSize(deadlineWriter{conn}, 64<<10)
	for {
		var m Message
		select {
		case <-ctx.Done():
			return nil
		case <-p.stop:
			return nil
		case m = <-p.q:
		}
		for more := true; more; {
			if err := writeFrame(bw, frameMsg, m); err != nil {
				return err
			}
			select {
			case m = <-p.q:
			default:
				more = false
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
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
