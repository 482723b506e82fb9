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
// that upgraded it) and a writer goroutine that runs only while there is
// something to write (startWriter), joined by the queue of owed responses.
// An idle connection so holds one goroutine, and no write buffer, queue
// slots or timer.
type conn struct {
	srv    *server
	ws     *websocket.Conn
	id     uint64 // unique on this member; names the connection in session moves
	ctx    context.Context
	cancel context.CancelFunc
	events *eventQueue // pushed watch events, for the writer

	session uint64        // set by hello; reader goroutine only
	timeout time.Duration // the session's, set with session

	// touched is set by every request and taken by the next renewal round;
	// confirmed is when (liveness.since) the member sent the last batch
	// renewing this session that the leader confirmed; 0: none yet.
	touched   atomic.Bool
	confirmed atomic.Int64

	// end closes kill once, with why; the writer then tells the client and
	// closes the socket. Responses waiting to complete end with it.
	kill     chan struct{}
	killOnce sync.Once
	endKind  endKind
	endText  string

	// wmu guards the owed responses, in request order, and the writer's
	// life: writing while a writer goroutine runs (at most one), stopped
	// once none may start again (the writer stopped the connection, or
	// serve is done with it). writers lets serve wait for the last one.
	wmu     sync.Mutex
	owed    fifo
	writing bool
	parked  bool          // the writer waits for more (park); wake it
	wake    chan struct{} // buffered 1: something was queued for a parked writer
	stopped bool
	writers sync.WaitGroup

	// readsAhead counts queued reads the writer has not evaluated yet. The
	// reader proposes no write while it is > 0, so a read never sees a write
	// the same connection sent after it (ZooKeeper's per-session order).
	// progress wakes the reader when the writer evaluates a read or makes
	// room in a full queue.
	readsAhead atomic.Int64
	progress   chan struct{}

	out frameBuf // the writer's frames not yet written; writer only
}

// serve runs the connection until the client or the server ends it.
func (s *server) serve(ws *websocket.Conn) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	// Closing the socket unblocks the reader and the writer on shutdown.
	stop := context.AfterFunc(ctx, func() { ws.NetConn().Close() })
	defer stop()

	c := &conn{srv: s, ws: ws, id: s.connSeq.Add(1), ctx: ctx, cancel: cancel,
		progress: make(chan struct{}, 1), wake: make(chan struct{}, 1), kill: make(chan struct{}),
		events: newEventQueue(s.cfg.MaxQueuedEvents, s.cfg.MaxQueuedEventBytes)}
	c.events.wake = c.startWriter
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
	if err := c.readLoop(); err != nil {
		// The client is gone or broke the protocol: nobody will read what is
		// still queued.
		s.log.Debug("connection reader stopped", "remote", ws.RemoteAddr().String(), "err", err)
		cancel()
	}
	// No writer starts after this; the one running (the answer to close,
	// or responses the client will not read) finishes or gives up.
	c.wmu.Lock()
	c.stopped = true
	if c.parked { // it would wait out writerLinger
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	c.wmu.Unlock()
	c.writers.Wait()
	c.abandonOwed()
	ws.Close()
}

// readLoop reads requests until an error, a close op or the end of ctx. It
// returns nil only after a close op, whose response the writer still owes.
// Requests are handled in a frame of their own (readOne), so the reader
// parks in ReadMessage with a shallow stack.
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
		if closed, err := c.readOne(mt, data); closed || err != nil {
			return err
		}
	}
}

// readOne handles one request frame and queues its pending response. It
// reports closed after a close op.
//
//go:noinline
func (c *conn) readOne(mt int, data []byte) (closed bool, err error) {
	now := time.Now()
	var p *pending
	if mt != websocket.TextMessage {
		p = errPending(0, "", now, errorf(wire.CodeBadRequest, "requests must be text frames holding one JSON object"))
	} else {
		p = c.handle(data, now)
	}
	if err := c.enqueue(p); err != nil {
		return false, err
	}
	return p.closeAfter, nil
}

// enqueue queues p for the writer, starting one if none runs. A full queue
// stops the reader until the writer makes room (backpressure on the
// client, counted so an operator sees it).
func (c *conn) enqueue(p *pending) error {
	c.wmu.Lock()
	if c.owed.len() >= c.srv.cfg.MaxPendingPerConn {
		c.srv.metrics.backpressure.Inc()
		for c.owed.len() >= c.srv.cfg.MaxPendingPerConn && !c.stopped {
			c.wmu.Unlock()
			select {
			case <-c.progress:
			case <-c.ctx.Done():
				c.srv.abandon(p)
				return c.ctx.Err()
			}
			c.wmu.Lock()
		}
	}
	if c.stopped {
		// The writer stopped the connection: nobody will answer.
		c.wmu.Unlock()
		c.srv.abandon(p)
		<-c.ctx.Done()
		return c.ctx.Err()
	}
	c.owed.push(p)
	c.startWriterLocked()
	c.wmu.Unlock()
	return nil
}

// startWriter starts a writer unless one runs or the connection is
// stopping. It never blocks for long: apply calls it (through the event
// queue's wake) with the state machine's lock held.
func (c *conn) startWriter() {
	c.wmu.Lock()
	c.startWriterLocked()
	c.wmu.Unlock()
}

func (c *conn) startWriterLocked() {
	if c.writing {
		if c.parked {
			c.parked = false
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
		return
	}
	if c.stopped {
		return
	}
	c.writing = true
	c.writers.Add(1)
	go c.runWriter()
}

func (c *conn) runWriter() {
	defer c.writers.Done()
	if err := c.writeLoop(); err != nil {
		c.srv.log.Debug("connection writer stopped", "remote", c.ws.RemoteAddr().String(), "err", err)
	}
}

// next returns the next owed response, or nil with more set when there are
// only events or gathered frames to write (or the connection is being
// ended). With nothing
// at all it ends the writer's turn (writing = false) under wmu, so that
// whoever queues something next starts a new one: no wakeup is lost.
//
// With linger, an empty queue does not end the turn yet: the writer is
// marked parked (still writing) and waits up to writerLinger for more
// (park), so a busy connection keeps one writer instead of starting a
// goroutine, and growing its stack, for every request.
func (c *conn) next(linger bool) (p *pending, more bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.parked = false
	if c.owed.len() > 0 {
		full := c.owed.len() >= c.srv.cfg.MaxPendingPerConn
		p = c.owed.pop()
		if full {
			c.signalProgress()
		}
		return p, true
	}
	// Gathered frames go out before the turn ends: a writer started after
	// it must not overtake them (nor share c.out).
	if c.events.queued() || c.ending() || c.out.len() > 0 {
		return nil, true
	}
	if linger {
		c.parked = true
		return nil, false
	}
	c.writing = false
	c.owed.release()
	return nil, false
}

// writerLinger is how long a writer with nothing to do waits for more
// before its goroutine ends. An idle session's pings come seconds apart,
// so its connection still holds no writer nearly all the time.
const writerLinger = 100 * time.Millisecond

// park waits, as a parked writer, until something is queued (wake), the
// connection ends, or writerLinger passes.
func (c *conn) park(t **time.Timer) {
	if *t == nil {
		*t = time.NewTimer(writerLinger)
	} else {
		(*t).Reset(writerLinger)
	}
	select {
	case <-c.wake:
	case <-(*t).C:
	case <-c.kill:
	case <-c.ctx.Done():
	}
	(*t).Stop()
}

// stopWriting ends the connection from the writer: no writer starts again,
// the reader is stopped, and what is still owed is abandoned.
func (c *conn) stopWriting() {
	c.wmu.Lock()
	c.stopped, c.writing = true, false
	c.wmu.Unlock()
	c.cancel() // stops the reader, which then waits for this writer
	c.abandonOwed()
}

// abandonOwed abandons every owed response.
func (c *conn) abandonOwed() {
	c.wmu.Lock()
	var left []*pending
	for c.owed.len() > 0 {
		left = append(left, c.owed.pop())
	}
	c.owed.release()
	c.wmu.Unlock()
	for _, p := range left {
		c.srv.abandon(p)
	}
	c.signalProgress() // a reader waiting for room sees stopped
}

func (c *conn) signalProgress() {
	select {
	case c.progress <- struct{}{}:
	default:
	}
}

func (c *conn) ending() bool {
	select {
	case <-c.kill:
		return true
	default:
		return false
	}
}

// writeLoop writes the owed responses in request order, and the pushed
// watch events (events.go) in between, until nothing is left (the writer's
// turn ends) or the connection ends under it (end). Frames are gathered in
// c.out and written together whenever the writer would wait, so a burst of
// events or pipelined answers costs one write.
func (c *conn) writeLoop() error {
	var timer *time.Timer // made on the first response that waits
	var linger *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	lingered := false
	for {
		if c.ending() {
			return c.writeEnd()
		}
		p, more := c.next(!lingered)
		if p == nil && !more && !lingered {
			c.park(&linger)
			lingered = true
			continue
		}
		lingered = false
		if p == nil {
			if !more {
				return nil // the turn is over, with nothing left unwritten
			}
			err := c.flushEvents(math.MaxUint64)
			if err == nil {
				err = c.sendOut()
			}
			if err != nil {
				c.stopWriting()
				return err
			}
			continue
		}
		if c.ctx.Err() != nil {
			c.srv.abandon(p)
			c.stopWriting()
			return nil
		}
		if !p.immediate() {
			// It may wait: what is gathered goes out first.
			if err := c.sendOut(); err != nil {
				c.srv.abandon(p)
				c.stopWriting()
				return err
			}
			if timer == nil {
				timer = time.NewTimer(time.Hour)
				timer.Stop()
			}
		}
		resp := c.srv.complete(c.kill, c.ctx.Done(), p, timer, c.events.ready, c.flushWhileWaiting)
		if c.ending() {
			c.srv.abandon(p)
			if p.read != nil {
				c.readEvaluated()
			}
			return c.writeEnd()
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
		if err == nil && p.closeAfter {
			err = c.sendOut()
		}
		if err != nil {
			c.stopWriting()
			return err
		}
		if p.closeAfter {
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "session closed")
			_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			c.stopWriting()
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
		c.startWriter() // an idle connection has none to tell the client
	})
}

// writeEnd sends what is gathered, the session event (on expiry) and a
// close frame naming the reason, then stops the connection.
func (c *conn) writeEnd() error {
	if c.endKind == endExpired {
		_ = c.writeEvent(&wire.Event{Event: wire.EventSession, State: wire.SessionExpired})
	}
	_ = c.sendOut()
	code := websocket.CloseNormalClosure
	if c.endKind == endOverflow || c.endKind == endWatchesLost {
		// The session goes on: the client is to come back and resume.
		code = websocket.CloseTryAgainLater
	}
	msg := websocket.FormatCloseMessage(code, c.endText)
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	c.stopWriting()
	return nil
}

// writeEvent gathers one pushed event; writer goroutine only.
func (c *conn) writeEvent(ev *wire.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return c.writeFrame(b)
}

// writeFrame gathers one text frame; writer goroutine only. It goes out
// with the next sendOut, or at once when the gathered frames grow large.
func (c *conn) writeFrame(b []byte) error {
	if c.out.add(b) {
		return nil
	}
	return c.sendOut()
}

// sendOut writes the gathered frames in one write; writer goroutine only.
func (c *conn) sendOut() error {
	return c.out.writeTo(c.ws.NetConn(), c.srv.cfg.writeTimeout())
}

// flushWhileWaiting sends the queued events while the writer waits for the
// response at the head of the queue: that response is evaluated (a read)
// or was applied (a write) at a zxid no lower than theirs, so they may go
// first. A failed write stops the connection, which ends the wait.
func (c *conn) flushWhileWaiting() {
	err := c.flushEvents(math.MaxUint64)
	if err == nil {
		err = c.sendOut()
	}
	if err != nil {
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
	c.signalProgress()
}

// awaitReads blocks the reader until every queued read has been evaluated.
func (c *conn) awaitReads() error {
	for c.readsAhead.Load() > 0 {
		select {
		case <-c.progress:
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
	}
	return nil
}

// write gathers one response as one text frame.
func (c *conn) write(resp *wire.Response) error {
	b, err := encodeResponse(resp)
	if err != nil {
		b, _ = json.Marshal(&wire.Response{ID: resp.ID, Error: errorf(wire.CodeInternal, "encode response: %v", err)})
	}
	return c.writeFrame(b)
}

// encodeResponse is the wire encoding of one response (PROTOCOL.md); a
// leader answer goes as its LeaderFrame, whose fields are always present.
func encodeResponse(resp *wire.Response) ([]byte, error) {
	if lf := resp.Leader; lf != nil && resp.Error == nil {
		lf.ID = resp.ID
		return json.Marshal(lf)
	}
	return wire.AppendResponse(nil, resp)
}

// errPending is a pending item that is complete with an error.
func errPending(id uint64, op string, now time.Time, e *wire.Error) *pending {
	return &pending{id: id, op: op, start: now, resp: &wire.Response{ID: id, Error: e}}
}

// immediate reports whether p completes without waiting: answered already,
// or a read evaluated at once (no read barrier round, no write).
func (p *pending) immediate() bool {
	return p.resp != nil || (p.read != nil && p.batch == nil && p.wait == nil)
}

// complete waits until p can be answered and returns its response. While
// it waits, events (when a connection's events become ready) are handed to
// flush. It gives up when ended (the connection's session ended under it)
// or done (the connection or the server stops) is closed.
func (s *server) complete(ended, done <-chan struct{}, p *pending, timer *time.Timer, events <-chan struct{}, flush func()) *wire.Response {
	if p.resp != nil {
		return p.resp
	}
	var resp *wire.Response
	switch {
	case p.wait != nil:
		timer.Reset(time.Until(p.deadline))
		resp = s.awaitWrite(ended, done, p, timer.C, events, flush)
		timer.Stop()
	case p.batch != nil:
		timer.Reset(time.Until(p.deadline))
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
			case <-ended:
				resp = &wire.Response{ID: p.id, Error: replicationError(errShuttingDown)}
				break wait
			case <-done:
				resp = &wire.Response{ID: p.id, Error: replicationError(errShuttingDown)}
				break wait
			}
		}
		timer.Stop()
	}
	if resp == nil {
		resp = p.read()
		resp.ID = p.id
	}
	return resp
}

// awaitWrite waits for the apply result of a proposed write.
func (s *server) awaitWrite(ended, done <-chan struct{}, p *pending, timeout <-chan time.Time, events <-chan struct{}, flush func()) *wire.Response {
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
			case <-ended:
				s.waits.cancel(p.origin)
				return &wire.Response{ID: p.id, Error: replicationError(errShuttingDown)}
			case <-done:
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

// fifo is the queue of owed responses: a ring that grows on demand (to
// the bound MaxPendingPerConn, which enqueue keeps) and is released when
// it empties, so an idle connection holds no slots.
type fifo struct {
	buf  []*pending
	head int
	n    int
}

func (q *fifo) len() int { return q.n }

func (q *fifo) push(p *pending) {
	if q.n == len(q.buf) {
		grown := make([]*pending, max(4, 2*len(q.buf)))
		for i := 0; i < q.n; i++ {
			grown[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = grown, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = p
	q.n++
}

func (q *fifo) pop() *pending {
	p := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return p
}

// release drops the ring's storage if it is empty.
func (q *fifo) release() {
	if q.n == 0 {
		q.buf, q.head = nil, 0
	}
}
