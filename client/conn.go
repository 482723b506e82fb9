package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
)

// conn is one WebSocket connection to one member. The session outlives it:
// when it breaks, supervise opens another.
type conn struct {
	ws       *websocket.Conn
	index    int // of endpoint in Config.Endpoints
	endpoint string
	server   string
	resumed  bool // opened by a resume hello rather than Dial's

	sendq  chan *call      // to the writer
	dead   chan struct{}   // closed by breakConn
	pinged chan pingResult // buffered 1: a ping's outcome, from the reader to the writer

	// pending holds the calls sent or being sent on this connection, by
	// request id; guarded by Client.mu, and nil once the connection broke.
	pending map[uint64]*call

	// watches holds the watches registered on this connection, by the
	// member's watch id; guarded by Client.mu, nil once the connection
	// broke. Its persistent watches then move to orphans, which the next
	// connection registers again (rewatch); its one-shots fail.
	watches map[uint64]*Watcher
	orphans []*Watcher
	// settled is the zxid of the last answer other than a watch's read
	// while the connection was live, and settleCount how many there were:
	// the member sends every event up to an answer's zxid before the
	// answer, so every watch registered before that answer has had all its
	// events up to settled. Written by the reader: under Client.mu while
	// the connection is live, and reset to 0 after a 1013 close.
	settled     atomic.Uint64
	settleCount atomic.Uint64
}

type call struct {
	op    string
	id    uint64
	frame []byte
	// sent is set by the writer just before it writes the frame. A write
	// whose frame was never written is safe to send again; one that may
	// have been is indeterminate when the connection breaks.
	sent atomic.Bool
	ch   chan result // buffered 1: nobody ever blocks on it; nil for the writer's pings
	// onOK, when set, runs on the reader goroutine with a successful
	// answer before anything after it is read (a watch's registration, so
	// that its first event finds it).
	onOK func(cn *conn, resp *wire.Response)
	// done, when set, runs on the reader goroutine with the answer,
	// successful or not (the writer's pings).
	done func(resp *wire.Response, err *Error)
}

// answer hands r to whoever waits for cl.
func (cl *call) answer(r result) {
	if cl.ch != nil {
		cl.ch <- r
	}
}

type result struct {
	resp *wire.Response
	err  error // *Error, or errResend
}

// open dials endpoint i and says hello synchronously, before any goroutine
// of the connection runs: a new session, or with resume the session of c.
// sentAt is when the hello was written.
func (c *Client) open(ctx context.Context, i int, resume bool) (cn *conn, resp *wire.Response, sentAt time.Time, err error) {
	endpoint := c.endpoint(i)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	dialNet := c.cfg.NetDialContext
	if dialNet == nil {
		dialNet = (&net.Dialer{}).DialContext
	}
	// The websocket handshake heeds the context's deadline but not its
	// cancellation (Close during a reconnect): closing the network
	// connection ends it. The Dialer calls NetDialContext on this goroutine.
	var stopClosing func() bool
	d := websocket.Dialer{
		Subprotocols:     []string{wire.Subprotocol},
		HandshakeTimeout: c.cfg.DialTimeout,
		NetDialContext: func(dctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := dialNet(dctx, network, addr)
			if err == nil {
				stopClosing = context.AfterFunc(ctx, func() { nc.Close() })
			}
			return nc, err
		},
	}
	ws, _, err := d.DialContext(ctx, "ws://"+endpoint+wire.EndpointPath, nil)
	if stopClosing != nil {
		stopClosing()
	}
	if err != nil {
		return nil, nil, time.Time{}, &Error{Code: wire.CodeUnavailable, Message: err.Error(), Index: -1, cause: err}
	}
	ws.SetReadLimit(c.cfg.MaxFrameBytes)
	req := wire.Request{ID: c.nextID.Add(1), Op: wire.OpHello}
	if resume {
		req.Session, req.Secret, req.LastZxid = c.session, c.secret, c.lastZxid.Load()
	} else {
		req.TimeoutMs = c.cfg.SessionTimeout.Milliseconds()
	}
	if c.cfg.AuthToken != "" {
		req.Auth = &wire.Auth{Token: c.cfg.AuthToken}
	}
	sentAt = time.Now()
	resp, err = c.hello(ctx, ws, &req)
	if err == nil && resume && resp.Session != c.session {
		err = &Error{Code: wire.CodeUnavailable, Index: -1,
			Message: "resume of session " + c.session + " answered session " + resp.Session}
	}
	if err != nil {
		ws.Close()
		return nil, nil, time.Time{}, err
	}
	c.noteZxid(resp.Zxid)
	cn = &conn{
		ws: ws, index: i, endpoint: endpoint, server: resp.Server, resumed: resume,
		sendq:   make(chan *call, 256),
		dead:    make(chan struct{}),
		pinged:  make(chan pingResult, 1),
		pending: make(map[uint64]*call),
		watches: make(map[uint64]*Watcher),
	}
	return cn, resp, sentAt, nil
}

// abandon ends the session just opened on cn, which no goroutine serves:
// it says close (so the member need not wait for the session to expire)
// and hangs up.
func (c *Client) abandon(cn *conn) {
	cn.ws.SetWriteDeadline(time.Now().Add(c.cfg.DialTimeout))
	_ = cn.ws.WriteJSON(&wire.Request{ID: c.nextID.Add(1), Op: wire.OpClose}) // best effort: it expires otherwise
	cn.ws.Close()
}

func (c *Client) hello(ctx context.Context, ws *websocket.Conn, req *wire.Request) (*wire.Response, error) {
	if dl, ok := ctx.Deadline(); ok {
		ws.SetWriteDeadline(dl)
		ws.SetReadDeadline(dl)
	}
	// The context may end before its deadline (Close during a reconnect):
	// closing the socket ends the read below.
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	if err := ws.WriteJSON(req); err != nil {
		return nil, &Error{Code: wire.CodeUnavailable, Message: err.Error(), Index: -1, cause: err}
	}
	for {
		var resp wire.Response
		if err := ws.ReadJSON(&resp); err != nil {
			return nil, &Error{Code: wire.CodeUnavailable, Message: err.Error(), Index: -1, cause: err}
		}
		if resp.Event != "" || resp.ID != req.ID {
			continue // nothing else can be pending yet
		}
		if !resp.OK {
			return nil, fromWire(wire.OpHello, &resp)
		}
		ws.SetWriteDeadline(time.Time{})
		ws.SetReadDeadline(time.Time{})
		return &resp, nil
	}
}

// breakConn marks cn broken and settles every call on it: reads, and writes
// never written, are sent again by Do on the next connection; writes that
// may have been written fail with reason, indeterminate unless the session
// expired (the server rejects everything after expiry). Only the first call
// for a connection counts.
func (c *Client) breakConn(cn *conn, reason *Error) {
	c.mu.Lock()
	if cn.pending == nil {
		c.mu.Unlock()
		return
	}
	pending := cn.pending
	cn.pending = nil
	var lost []*Watcher
	for _, id := range slices.Sorted(maps.Keys(cn.watches)) {
		if w := cn.watches[id]; w.oneShot {
			lost = append(lost, w)
		} else {
			cn.orphans = append(cn.orphans, w)
		}
	}
	cn.watches = nil
	if c.cur == cn {
		c.cur = nil
		c.up = make(chan struct{})
		c.setStateLocked()
	}
	quiet := c.closing || c.over != nil
	// Under mu: the next connection takes the orphans under mu, so every
	// event delivery after that sees cn dead (brokeUnder).
	close(cn.dead)
	c.mu.Unlock()
	// Once Close returns nothing more reaches the member, so a frame whose
	// sent flag is still clear below was never written.
	cn.ws.Close()
	if !quiet {
		c.log.Warn("arbor: connection lost", "endpoint", cn.endpoint, "session", c.session, "err", reason)
	}
	for _, w := range lost {
		w.fail(ErrWatchLost)
	}
	for _, cl := range pending {
		if !cl.sent.Load() || !writeOps[cl.op] {
			cl.answer(result{err: errResend})
			continue
		}
		e := *reason
		e.Indeterminate = reason.Code != wire.CodeSessionExpired
		cl.answer(result{err: &e})
	}
}

func connLost(format string, err error) *Error {
	return &Error{Code: CodeConnectionLost, Message: "connection lost: " + format + err.Error(), Index: -1, cause: err}
}

func (c *Client) readLoop(cn *conn) {
	for {
		_, frame, err := cn.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.CloseTryAgainLater {
				// The member dropped this connection's watches (a snapshot
				// installed, or events overflowed): register them again
				// since what they delivered, not since the answers, in
				// case the member answered past what it sent.
				cn.settled.Store(0)
			}
			c.breakConn(cn, connLost("", err))
			return
		}
		if c.fastWatchEvent(cn, frame) {
			continue // watch_decode.go
		}
		var resp wire.Response
		if err := wire.DecodeResponse(frame, &resp); err != nil {
			c.breakConn(cn, connLost("undecodable frame from server: ", err))
			return
		}
		c.noteZxid(resp.Zxid)
		if resp.Event != "" {
			c.handleEvent(cn, &resp)
			continue
		}
		c.mu.Lock()
		cl := cn.pending[resp.ID]
		delete(cn.pending, resp.ID)
		// A watch's answer comes before its replay; every other answer
		// after every event up to its zxid. Only while cn is live: once it
		// is broken (a ping timeout, another goroutine) the frames still
		// buffered are read on, its events no longer reach the watches,
		// and an answer after them must not say they were delivered.
		if cn.pending != nil && resp.OK && resp.Zxid > 0 && (cl == nil || cl.op != wire.OpWatch) {
			cn.settled.Store(max(cn.settled.Load(), resp.Zxid))
			cn.settleCount.Add(1)
		}
		c.mu.Unlock()
		if cl == nil {
			continue // its caller gave up waiting
		}
		if resp.OK {
			if cl.onOK != nil {
				cl.onOK(cn, &resp)
			}
			if cl.done != nil {
				cl.done(&resp, nil)
			}
			cl.answer(result{resp: &resp})
			continue
		}
		e := fromWire(cl.op, &resp)
		if cl.done != nil {
			cl.done(&resp, e)
		}
		cl.answer(result{resp: &resp, err: e})
		if e.Code == wire.CodeSessionExpired {
			c.expire(e) // breaks cn, which ends this loop
		}
	}
}

func (c *Client) handleEvent(cn *conn, ev *wire.Response) {
	if ev.Event == wire.EventWatch || ev.Event == wire.EventResync {
		c.routeWatchEvent(cn, ev)
	}
	if ev.Event == wire.EventSession && ev.State == wire.SessionExpired {
		// Expired holds when OnEvent sees the event; calls start failing
		// after it returns.
		c.expired.Store(true)
		defer c.expire(&Error{Code: wire.CodeSessionExpired, Message: "session " + c.session + " expired", Index: -1})
	}
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(ev)
	}
}

// expire ends the session for good: every later call fails with reason.
func (c *Client) expire(reason *Error) {
	c.log.Warn("arbor: session expired", "session", c.session, "err", reason)
	c.terminate(reason, false)
}

// writeLoop writes the frames queued on cn and, every timeout/3 whether
// or not the connection is busy, a ping of its own (a ping answer is the
// only thing that moves the session deadline): so a connection has no
// pinger goroutine. After a resume it pings at once and then every
// quickPingInterval, at most quickPings times, until an answer confirms a
// renewal. A ping not answered within timeout/3 breaks cn. It returns when
// cn breaks.
func (c *Client) writeLoop(cn *conn) {
	interval := c.timeout / 3
	quick, first := 0, interval
	if cn.resumed {
		quick, first = quickPings, 0
	}
	t := time.NewTimer(first)
	defer t.Stop()
	waiting := false // for the answer to the last ping
	for {
		select {
		case cl := <-cn.sendq:
			if !c.write(cn, cl) {
				return
			}
		case <-t.C:
			if waiting {
				c.breakConn(cn, &Error{Code: CodeConnectionLost, Index: -1,
					Message: fmt.Sprintf("member %s did not answer a ping within %v", cn.server, interval)})
				return
			}
			// Before the frame is written, so no later than the member
			// takes it: the deadline counts from here.
			sentAt := time.Now()
			cl, ok := c.pingCall(cn, sentAt)
			if !ok {
				return // broken
			}
			waiting = true
			t.Reset(interval)
			if !c.write(cn, cl) {
				return
			}
		case r := <-cn.pinged:
			waiting = false
			next := interval
			if quick > 0 && !r.confirmed {
				quick--
				next = quickPingInterval
			} else {
				quick = 0
			}
			t.Stop()
			t.Reset(next - time.Since(r.sentAt))
		case <-cn.dead:
			return
		}
	}
}

// write writes cl's frame on cn, and reports false when that broke cn.
func (c *Client) write(cn *conn, cl *call) bool {
	cl.sent.Store(true)
	cn.ws.SetWriteDeadline(time.Now().Add(c.timeout))
	if err := cn.ws.WriteMessage(websocket.TextMessage, cl.frame); err != nil {
		c.breakConn(cn, connLost("", err))
		return false
	}
	return true
}
