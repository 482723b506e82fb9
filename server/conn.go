package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
)

// pending is one response a connection owes, in request order. Exactly one
// of resp, wait, read describes how it completes:
//   - resp: complete already (errors, ping, hello);
//   - wait: a proposed write, complete when applied (or at deadline);
//   - read: evaluated when it reaches the head of the queue, after batch (the
//     read barrier round) is done when batch is set.
type pending struct {
	id       uint64
	op       string
	start    time.Time
	deadline time.Time

	resp *wire.Response

	wait   <-chan applyResult
	origin origin
	build  func(applyResult) *wire.Response

	read  func() *wire.Response
	batch *readBatch

	closeAfter bool // close the socket after writing (op close)
	// eventsAfter: the events this op queued (a watch's replay or resync)
	// go out after its response, which carries the watch id they name.
	eventsAfter bool
}

// conn is one WebSocket connection: one reader goroutine (the HTTP handler
// that upgraded it) and one writer goroutine, joined by queue.
type conn struct {
	srv    *server
	ws     *websocket.Conn
	id     uint64 // unique on this member; names the connection in session moves
	ctx    context.Context
	cancel context.CancelFunc
	queue  chan *pending
	events *eventQueue // pushed watch events, for the writer

	session uint64        // set by hello; reader goroutine only
	timeout time.Duration // the session's, set with session

	// touched is set by every request and taken by the next renewal round;
	// confirmed is when (liveness.since) the member sent the last batch
	// renewing this session that the leader confirmed; 0: none yet.
	touched   atomic.Bool
	confirmed atomic.Int64

	// end closes kill once, with why; the writer then tells the client and
	// closes the socket. waitCtx (what responses wait under) ends with it.
	kill     chan struct{}
	killOnce sync.Once
	endKind  endKind
	endText  string
	waitCtx  context.Context
	endWaits context.CancelFunc

	// readsAhead counts queued reads the writer has not evaluated yet. The
	// reader proposes no write while it is > 0, so a read never sees a write
	// the same connection sent after it (ZooKeeper's per-session order);
	// readDone wakes the reader when the writer evaluates one.
	readsAhead atomic.Int64
	readDone   chan struct{}
}

// serve runs the connection until the client or the server ends it.
func (s *server) serve(ws *websocket.Conn) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	// Closing the socket unblocks the reader and the writer on shutdown.
	stop := context.AfterFunc(ctx, func() { ws.NetConn().Close() })
	defer stop()

	c := &conn{srv: s, ws: ws, id: s.connSeq.Add(1), ctx: ctx, cancel: cancel,
		queue: make(chan *pending, s.cfg.MaxPendingPerConn), readDone: make(chan struct{}, 1),
		kill: make(chan struct{}), events: newEventQueue(s.cfg.MaxQueuedEvents, s.cfg.MaxQueuedEventBytes)}
	c.waitCtx, c.endWaits = context.WithCancel(ctx)
	defer c.endWaits()
	defer func() {
		if c.session != 0 {
			s.live.deregister(c)
		}
		// Watches and lock waiters are per connection.
		s.sm.read(func(v stateView) {
			v.dropWatches(c)
			v.dropWaiters(c)
		})
		c.events.close()
	}()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		if err := c.writeLoop(); err != nil {
			s.log.Debug("connection writer stopped", "remote", ws.RemoteAddr().String(), "err", err)
		}
	}()
	if err := c.readLoop(); err != nil {
		// The client is gone or broke the protocol: nobody will read what is
		// still queued.
		s.log.Debug("connection reader stopped", "remote", ws.RemoteAddr().String(), "err", err)
		cancel()
	}
	close(c.queue)
	<-writerDone
	ws.Close()
}

// readLoop reads requests until an error, a close op or the end of ctx. It
// returns nil only after a close op, whose response the writer still owes.
func (c *conn) readLoop() error {
	c.ws.SetReadLimit(int64(c.srv.cfg.MaxFrameBytes))
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				// gorilla has sent close 1009; drain what the client is still
				// sending, or closing now would reset the connection and
				// the client could lose the close frame.
				c.drain()
			}
			return err
		}
		now := time.Now()
		var p *pending
		if mt != websocket.TextMessage {
			p = errPending(0, "", now, errorf(wire.CodeBadRequest, "requests must be text frames holding one JSON object"))
		} else {
			p = c.handle(data, now)
		}
		select {
		case c.queue <- p:
		default:
			// Full: stop reading until the writer catches up (backpressure
			// on the client, counted so an operator sees it).
			c.srv.metrics.backpressure.Inc()
			select {
			case c.queue <- p:
			case <-c.ctx.Done():
				c.srv.abandon(p)
				return c.ctx.Err()
			}
		}
		if p.closeAfter {
			return nil
		}
	}
}

// writeLoop writes the owed responses in request order, and the pushed
// watch events (events.go) in between, until the queue closes or the
// connection is ended under it (end). Each source of frames is one case of
// the select below; answers that may overtake later ones (lock, elect)
// would be one more.
func (c *conn) writeLoop() error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var p *pending
		var ok bool
		select {
		case p, ok = <-c.queue:
			if !ok {
				return nil
			}
		case <-c.events.ready:
			if err := c.flushEvents(math.MaxUint64); err != nil {
				c.cancel()
				c.srv.abandonQueue(c.queue)
				return err
			}
			continue
		case <-c.kill:
			return c.writeEnd()
		}
		if c.ctx.Err() != nil {
			c.srv.abandon(p)
			c.srv.abandonQueue(c.queue) // drain, so the reader never blocks on a full queue
			return nil
		}
		resp := c.srv.complete(c.waitCtx, p, timer, c.events.ready, c.flushWhileWaiting)
		select {
		case <-c.kill:
			c.srv.abandon(p)
			if p.read != nil {
				c.readEvaluated()
			}
			return c.writeEnd()
		default:
		}
		if resp == deferredResponse {
			continue // a lock or elect that waits: answered when granted
		}
		if p.read != nil {
			c.readEvaluated()
		}
		// Before a response evaluated at zxid Z, the queued events with
		// zxid <= Z, so a read never overtakes the event of a change it
		// observes (and a write's answer never overtakes its own events).
		var err error
		if resp.Zxid > 0 && !p.eventsAfter {
			err = c.flushEvents(resp.Zxid)
		}
		c.srv.metrics.observe(p.op, resp, time.Since(p.start))
		if err == nil {
			err = c.write(resp)
		}
		if err != nil {
			c.cancel() // stops the reader, which then closes the queue
			c.srv.abandonQueue(c.queue)
			return err
		}
		if p.closeAfter {
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "session closed")
			_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			c.srv.abandonQueue(c.queue)
			return nil
		}
	}
}

// endKind is why a connection's session ended under it.
type endKind uint8

const (
	endExpired     endKind = iota + 1 // the cluster expired the session
	endMoved                          // the session was resumed on another connection
	endOverflow                       // the connection fell behind on its watch events
	endWatchesLost                    // a snapshot restore dropped the connection's watches
)

// end makes the writer tell the client why its session ended here and close
// the connection. It never blocks: apply calls it.
func (c *conn) end(kind endKind, text string) {
	c.killOnce.Do(func() {
		c.endKind, c.endText = kind, text
		close(c.kill)
		c.endWaits()
	})
}

// writeEnd sends the session event (on expiry) and a close frame naming the
// reason, then stops the connection.
func (c *conn) writeEnd() error {
	if c.endKind == endExpired {
		_ = c.writeEvent(&wire.Event{Event: wire.EventSession, State: wire.SessionExpired})
	}
	code := websocket.CloseNormalClosure
	if c.endKind == endOverflow || c.endKind == endWatchesLost {
		// The session goes on: the client is to come back and resume.
		code = websocket.CloseTryAgainLater
	}
	msg := websocket.FormatCloseMessage(code, c.endText)
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	c.cancel()
	c.srv.abandonQueue(c.queue)
	return nil
}

// writeEvent writes one pushed event; writer goroutine only.
func (c *conn) writeEvent(ev *wire.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return c.writeFrame(b)
}

// writeFrame writes one text frame; writer goroutine only.
func (c *conn) writeFrame(b []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.srv.cfg.writeTimeout()))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// flushWhileWaiting sends the queued events while the writer waits for the
// response at the head of the queue: that response is evaluated (a read)
// or was applied (a write) at a zxid no lower than theirs, so they may go
// first. A failed write stops the connection, which ends the wait.
func (c *conn) flushWhileWaiting() {
	if err := c.flushEvents(math.MaxUint64); err != nil {
		c.cancel()
	}
}

// drain discards incoming bytes until the client closes or drainTimeout.
func (c *conn) drain() {
	nc := c.ws.NetConn()
	_ = nc.SetReadDeadline(time.Now().Add(drainTimeout))
	_, _ = io.Copy(io.Discard, nc)
}

// readEvaluated tells the reader that one queued read has been evaluated.
func (c *conn) readEvaluated() {
	c.readsAhead.Add(-1)
	select {
	case c.readDone <- struct{}{}:
	default:
	}
}

// awaitReads blocks the reader until every queued read has been evaluated.
func (c *conn) awaitReads() error {
	for c.readsAhead.Load() > 0 {
		select {
		case <-c.readDone:
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
	}
	return nil
}

// write encodes one response as one text frame.
func (c *conn) write(resp *wire.Response) error {
	var b []byte
	var err error
	if lf := resp.Leader; lf != nil && resp.Error == nil {
		lf.ID = resp.ID
		b, err = json.Marshal(lf)
	} else {
		b, err = wire.AppendResponse(nil, resp)
	}
	if err != nil {
		b, _ = json.Marshal(&wire.Response{ID: resp.ID, Error: errorf(wire.CodeInternal, "encode response: %v", err)})
	}
	return c.writeFrame(b)
}

// errPending is a pending item that is complete with an error.
func errPending(id uint64, op string, now time.Time, e *wire.Error) *pending {
	return &pending{id: id, op: op, start: now, resp: &wire.Response{ID: id, Error: e}}
}

// complete waits until p can be answered and returns its response. While
// it waits, events (when a connection's events become ready) are handed to
// flush.
func (s *server) complete(ctx context.Context, p *pending, timer *time.Timer, events <-chan struct{}, flush func()) *wire.Response {
	if p.resp != nil {
		return p.resp
	}
	timer.Reset(time.Until(p.deadline))
	var resp *wire.Response
	switch {
	case p.wait != nil:
		resp = s.awaitWrite(ctx, p, timer.C, events, flush)
	case p.batch != nil:
	wait:
		for {
			select {
			case <-p.batch.done:
				if p.batch.err != nil {
					resp = &wire.Response{ID: p.id, Error: replicationError(p.batch.err)}
				}
				break wait
			case <-events:
				flush()
			case <-timer.C:
				resp = &wire.Response{ID: p.id, Error: s.timedOut()}
				break wait
			case <-ctx.Done():
				resp = &wire.Response{ID: p.id, Error: replicationError(errShuttingDown)}
				break wait
			}
		}
	}
	timer.Stop()
	if resp == nil {
		resp = p.read()
		resp.ID = p.id
	}
	return resp
}

// awaitWrite waits for the apply result of a proposed write.
func (s *server) awaitWrite(ctx context.Context, p *pending, timeout <-chan time.Time, events <-chan struct{}, flush func()) *wire.Response {
	defer s.releaseProposal()
	// Settled here, whatever happens: a later abandon (the connection ended
	// under the writer) must not release the proposal slot a second time,
	// which would block the writer for good.
	defer func() { p.wait = nil }()
	var r applyResult
	select {
	case r = <-p.wait:
	default:
	wait:
		for {
			select {
			case r = <-p.wait:
				break wait
			case <-events:
				flush()
			case <-timeout:
				s.waits.cancel(p.origin)
				return &wire.Response{ID: p.id, Error: s.timedOut()}
			case <-ctx.Done():
				s.waits.cancel(p.origin)
				return &wire.Response{ID: p.id, Error: replicationError(errShuttingDown)}
			}
		}
	}
	if r.Refused != nil {
		return &wire.Response{ID: p.id, Error: replicationError(r.Refused)}
	}
	resp := p.build(r)
	if resp != deferredResponse {
		resp.ID = p.id
	}
	return resp
}

// abandon releases what a pending item holds when nobody will answer it.
func (s *server) abandon(p *pending) {
	if p.wait != nil {
		s.waits.cancel(p.origin)
		s.releaseProposal()
		p.wait = nil
	}
}

// abandonQueue abandons everything left in q until it is closed.
func (s *server) abandonQueue(q <-chan *pending) {
	for p := range q {
		s.abandon(p)
	}
}
