package raftnode

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

func (t *tcpTransport) acceptLoop(ctx context.Context, ln net.Listener) {
	defer t.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("accept failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		t.mu.Lock()
		if !t.running {
			t.mu.Unlock()
			c.Close()
			return
		}
		t.inbound[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serveConn(ctx, c)
	}
}

func (t *tcpTransport) serveConn(ctx context.Context, c net.Conn) {
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.inbound, c)
		t.mu.Unlock()
		c.Close()
	}()
	br := bufio.NewReaderSize(c, 64<<10)
	from, err := t.acceptHandshake(c, br)
	if err != nil {
		t.log.Debug("inbound peer rejected", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	for {
		typ, m, err := readFrame(br)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				t.log.Debug("inbound peer connection ended", "peer", from, "err", err)
			}
			return
		}
		if m.From != from || m.To != t.id {
			t.log.Warn("misaddressed frame", "peer", from, "from", m.From, "to", m.To)
			return
		}
		t.seen(from)
		switch typ {
		case frameMsg:
			if t.h.Step(ctx, m) != nil {
				return
			}
		case frameSnap:
			var sb [8]byte
			if _, err := io.ReadFull(br, sb[:]); err != nil {
				return
			}
			lr := io.LimitReader(br, int64(binary.BigEndian.Uint64(sb[:])))
			if err := t.h.ReceiveSnapshot(ctx, m, lr); err != nil {
				t.log.Warn("receiving snapshot failed", "peer", from, "err", err)
				if _, err := io.Copy(io.Discard, lr); err != nil {
					return
				}
			}
		default:
			return
		}
	}
}

// acceptHandshake validates the dialer and answers with a status byte.
func (t *tcpTransport) acceptHandshake(c net.Conn, br *bufio.Reader) (uint64, error) {
	c.SetDeadline(time.Now().Add(ioTimeout))
	defer c.SetDeadline(time.Time{})
	var fixed [8 + 8 + 8 + 8 + 2]byte
	if _, err := io.ReadFull(br, fixed[:]); err != nil {
		return 0, err
	}
	cluster := binary.BigEndian.Uint64(fixed[8:16])
	from := binary.BigEndian.Uint64(fixed[16:24])
	to := binary.BigEndian.Uint64(fixed[24:32])
	url := make([]byte, binary.BigEndian.Uint16(fixed[32:34]))
	if _, err := io.ReadFull(br, url); err != nil {
		return 0, err
	}
	status := byte(0)
	switch {
	case string(fixed[:8]) != handshakeMagic || cluster != t.cluster:
		status = 1
	case to != t.id:
		status = 2
	}
	if _, err := c.Write([]byte{status}); err != nil {
		return 0, err
	}
	if status != 0 {
		return 0, fmt.Errorf("%w: status %d", ErrHandshake, status)
	}
	t.learn(from, string(url))
	return from, nil
}

// learn adds a dialer we had no address for (a joining member learns its
// leader this way).
func (t *tcpTransport) learn(id uint64, url string) {
	t.mu.Lock()
	_, known := t.peers[id]
	removed := t.removed[id]
	t.mu.Unlock()
	if !known && !removed && url != "" && id != t.id {
		t.AddPeer(id, url)
	}
}

func (t *tcpTransport) seen(id uint64) {
	t.mu.Lock()
	t.lastSeen[id] = time.Now()
	t.mu.Unlock()
}

// readFrame reads one frame, checking its length before allocating.
func readFrame(r io.Reader) (byte, Message, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, Message{}, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrameSize {
		return 0, Message{}, fmt.Errorf("%w: frame of %d bytes", ErrCorrupt, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, Message{}, err
	}
	m, err := unmarshalMessage(b)
	if err != nil {
		return 0, Message{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return hdr[0], m, nil
}
