package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
)

// Defaults of Config.
const (
	DefaultSessionTimeout = 10 * time.Second
	DefaultDialTimeout    = 5 * time.Second
)

// Config configures Dial. Only Endpoints is required.
type Config struct {
	// Endpoints are the members to try, as HOST:PORT, in order.
	Endpoints []string
	// SessionTimeout is the requested session timeout (the server clamps it
	// to its own bounds). Default 10s.
	SessionTimeout time.Duration
	// DialTimeout bounds the connection and hello to one endpoint. Default 5s.
	DialTimeout time.Duration
	// MaxFrameBytes bounds an incoming frame. Default wire.DefaultMaxFrame.
	MaxFrameBytes int64
	// AuthToken is sent with hello when set.
	AuthToken string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnEvent, when set, receives every pushed event (watches, session
	// state). It is called on the reader goroutine and must not block.
	OnEvent func(ev *wire.Response)
}

// Client is a session with an Arbor cluster. It is safe for concurrent use.
type Client struct {
	cfg Config
	log *slog.Logger

	// Fixed after Dial; kept to resume the session elsewhere later.
	conn     *websocket.Conn
	endpoint string
	session  string
	secret   string
	timeout  time.Duration
	server   string

	nextID   atomic.Uint64
	lastZxid atomic.Uint64
	lastSend atomic.Int64 // unix nanos of the last frame written
	expired  atomic.Bool

	sendq chan []byte   // to the writer goroutine
	stop  chan struct{} // closed by Close: stops the writer and pinger
	dead  chan struct{} // closed once the connection is broken
	wg    sync.WaitGroup

	mu       sync.Mutex
	pending  map[uint64]*call
	broken   *Error // why the connection is unusable; nil while healthy
	closing  bool
	stopOnce sync.Once
}

type call struct {
	op string
	ch chan result // buffered 1: the reader never blocks on it
}

type result struct {
	resp *wire.Response
	err  *Error
}

// Dial connects to the first endpoint that accepts a WebSocket and answers
// hello, opening a new session. On failure it returns an *Error with code
// UNAVAILABLE naming the endpoints it tried, or the error hello answered
// (AUTH_FAILED, ...).
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, &Error{Code: wire.CodeBadRequest, Message: "no endpoints given", Index: -1}
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = wire.DefaultMaxFrame
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Client{
		cfg:     cfg,
		log:     cfg.Logger,
		sendq:   make(chan []byte, 256),
		stop:    make(chan struct{}),
		dead:    make(chan struct{}),
		pending: make(map[uint64]*call),
	}
	var lastErr error
	for _, ep := range cfg.Endpoints {
		err := c.connect(ctx, ep)
		if err == nil {
			c.start()
			return c, nil
		}
		var e *Error
		if errors.As(err, &e) && e.Code != wire.CodeUnavailable {
			// The member answered and refused: another member would too.
			return nil, err
		}
		c.log.Debug("arbor: endpoint unusable", "endpoint", ep, "err", err)
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &Error{
		Code:    wire.CodeUnavailable,
		Message: "cannot reach any of " + strings.Join(cfg.Endpoints, ","),
		Index:   -1,
		cause:   lastErr,
	}
}

// connect dials one endpoint and says hello synchronously, before any
// goroutine runs.
func (c *Client) connect(ctx context.Context, endpoint string) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	d := websocket.Dialer{
		Subprotocols:     []string{wire.Subprotocol},
		HandshakeTimeout: c.cfg.DialTimeout,
	}
	conn, _, err := d.DialContext(ctx, "ws://"+endpoint+wire.EndpointPath, nil)
	if err != nil {
		return &Error{Code: wire.CodeUnavailable, Message: err.Error(), Index: -1, cause: err}
	}
	conn.SetReadLimit(c.cfg.MaxFrameBytes)
	resp, err := c.hello(ctx, conn)
	if err != nil {
		conn.Close()
		return err
	}
	c.conn, c.endpoint = conn, endpoint
	c.session, c.secret, c.server = resp.Session, resp.Secret, resp.Server
	c.timeout = time.Duration(resp.TimeoutMs) * time.Millisecond
	if c.timeout <= 0 {
		c.timeout = c.cfg.SessionTimeout
	}
	c.noteZxid(resp.Zxid)
	c.log.Debug("arbor: session open", "endpoint", endpoint, "session", c.session,
		"server", c.server, "timeout", c.timeout)
	return nil
}

func (c *Client) hello(ctx context.Context, conn *websocket.Conn) (*wire.Response, error) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetWriteDeadline(dl)
		conn.SetReadDeadline(dl)
	}
	req := wire.Request{ID: c.nextID.Add(1), Op: wire.OpHello, TimeoutMs: c.cfg.SessionTimeout.Milliseconds()}
	if c.cfg.AuthToken != "" {
		req.Auth = &wire.Auth{Token: c.cfg.AuthToken}
	}
	if err := conn.WriteJSON(&req); err != nil {
		return nil, &Error{Code: wire.CodeUnavailable, Message: err.Error(), Index: -1, cause: err}
	}
	for {
		var resp wire.Response
		if err := conn.ReadJSON(&resp); err != nil {
			return nil, &Error{Code: wire.CodeUnavailable, Message: err.Error(), Index: -1, cause: err}
		}
		if resp.Event != "" || resp.ID != req.ID {
			continue // nothing else can be pending yet
		}
		if !resp.OK {
			return nil, fromWire(wire.OpHello, &resp)
		}
		conn.SetWriteDeadline(time.Time{})
		conn.SetReadDeadline(time.Time{})
		return &resp, nil
	}
}

// start launches the owned goroutines; Close stops them.
func (c *Client) start() {
	c.lastSend.Store(time.Now().UnixNano())
	c.wg.Add(3)
	go func() { defer c.wg.Done(); c.readLoop() }()
	go func() { defer c.wg.Done(); c.writeLoop() }()
	go func() { defer c.wg.Done(); c.pingLoop() }()
}

// Session returns the session id (16 hex digits).
func (c *Client) Session() string { return c.session }

// SessionTimeout returns the timeout the server granted.
func (c *Client) SessionTimeout() time.Duration { return c.timeout }

// Server returns the name of the member this client is connected to.
func (c *Client) Server() string { return c.server }

// LastZxid returns the highest zxid seen in any response or event.
func (c *Client) LastZxid() uint64 { return c.lastZxid.Load() }

// Expired reports whether the cluster told this client its session expired.
func (c *Client) Expired() bool { return c.expired.Load() }

func (c *Client) noteZxid(z uint64) {
	for {
		cur := c.lastZxid.Load()
		if z <= cur || c.lastZxid.CompareAndSwap(cur, z) {
			return
		}
	}
}

// Do sends one raw request and waits for its response. The id is assigned
// here. It is the escape hatch for tools that want the whole response (the
// arbor CLI's --json); applications use the typed methods. A failed response
// is returned together with its *Error.
func (c *Client) Do(ctx context.Context, req *wire.Request) (*wire.Response, error) {
	if req.Op == wire.OpHello {
		return nil, &Error{Code: wire.CodeBadRequest, Message: "hello is sent by Dial", Index: -1}
	}
	cl := &call{op: req.Op, ch: make(chan result, 1)}
	c.mu.Lock()
	if c.broken != nil {
		err := c.broken
		c.mu.Unlock()
		return nil, err
	}
	req.ID = c.nextID.Add(1)
	c.pending[req.ID] = cl
	c.mu.Unlock()

	frame, err := json.Marshal(req)
	if err != nil {
		c.forget(req.ID)
		return nil, &Error{Code: wire.CodeBadRequest, Message: err.Error(), Index: -1, cause: err}
	}
	select {
	case c.sendq <- frame:
	case <-ctx.Done():
		c.forget(req.ID)
		return nil, ctxError(ctx, false)
	case <-c.dead:
		// The pending entry was failed with the reason: fall through.
	}
	select {
	case r := <-cl.ch:
		if r.err != nil {
			return r.resp, r.err
		}
		return r.resp, nil
	case <-ctx.Done():
		c.forget(req.ID)
		return nil, ctxError(ctx, writeOps[req.Op])
	}
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func ctxError(ctx context.Context, indeterminate bool) *Error {
	code := CodeCanceled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code = wire.CodeTimeout
	}
	return &Error{Code: code, Message: ctx.Err().Error(), Index: -1, Indeterminate: indeterminate, cause: ctx.Err()}
}

// fail marks the connection broken with reason and fails every request in
// flight; writes among them become indeterminate. Only the first call counts.
func (c *Client) fail(reason *Error) {
	c.mu.Lock()
	if c.broken != nil {
		c.mu.Unlock()
		return
	}
	if c.closing && reason.Code == CodeConnectionLost {
		// The server hangs up after answering close; later calls should
		// say the client was closed.
		reason = &Error{Code: CodeClosed, Message: "client closed", Index: -1}
	}
	c.broken = reason
	pending := c.pending
	c.pending = make(map[uint64]*call)
	closing := c.closing
	c.mu.Unlock()
	close(c.dead)
	c.conn.Close() // unblocks the reader
	if !closing {
		c.log.Warn("arbor: connection unusable", "endpoint", c.endpoint, "session", c.session, "err", reason)
	}
	for _, cl := range pending {
		e := *reason
		e.Indeterminate = writeOps[cl.op] && reason.Code != wire.CodeSessionExpired
		cl.ch <- result{err: &e}
	}
}

func (c *Client) readLoop() {
	for {
		_, frame, err := c.conn.ReadMessage()
		if err != nil {
			c.fail(&Error{Code: CodeConnectionLost, Message: "connection lost: " + err.Error(), Index: -1, cause: err})
			return
		}
		var resp wire.Response
		if err := json.Unmarshal(frame, &resp); err != nil {
			c.fail(&Error{Code: CodeConnectionLost, Message: "undecodable frame from server: " + err.Error(), Index: -1, cause: err})
			return
		}
		c.noteZxid(resp.Zxid)
		if resp.Event != "" {
			c.handleEvent(&resp)
			continue
		}
		c.mu.Lock()
		cl := c.pending[resp.ID]
		delete(c.pending, resp.ID)
		c.mu.Unlock()
		if cl == nil {
			continue // its caller gave up waiting
		}
		r := result{resp: &resp}
		if !resp.OK {
			r.err = fromWire(cl.op, &resp)
		}
		cl.ch <- r
	}
}

func (c *Client) handleEvent(ev *wire.Response) {
	if ev.Event == wire.EventSession && ev.State == wire.SessionExpired {
		c.expired.Store(true)
		c.log.Warn("arbor: session expired", "session", c.session)
		defer c.fail(&Error{Code: wire.CodeSessionExpired, Message: "session " + c.session + " expired", Index: -1})
	}
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(ev)
	}
}

func (c *Client) writeLoop() {
	for {
		select {
		case frame := <-c.sendq:
			c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
			if err := c.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
				c.fail(&Error{Code: CodeConnectionLost, Message: "connection lost: " + err.Error(), Index: -1, cause: err})
				return
			}
			c.lastSend.Store(time.Now().UnixNano())
		case <-c.dead:
			return
		case <-c.stop:
			return
		}
	}
}

// pingLoop keeps the session alive: it pings once the connection has been
// idle for a third of the session timeout.
func (c *Client) pingLoop() {
	interval := c.timeout / 3
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-c.dead:
			return
		case <-c.stop:
			return
		}
		idle := time.Since(time.Unix(0, c.lastSend.Load()))
		if idle < interval {
			t.Reset(interval - idle)
			continue
		}
		// Close fails the ping in flight through fail(), so this never
		// outlives the Client.
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		_, err := c.Do(ctx, &wire.Request{Op: wire.OpPing})
		cancel()
		if err != nil {
			c.log.Debug("arbor: ping failed", "session", c.session, "err", err)
		}
		t.Reset(interval)
	}
}

// Close ends the session: the cluster deletes its ephemeral nodes. It waits
// for the answer (bounded by ctx), then stops every goroutine of the Client.
// It returns nil when the session was closed or was already gone.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closing = true
	healthy := c.broken == nil
	c.mu.Unlock()
	var err error
	if healthy {
		_, err = c.Do(ctx, &wire.Request{Op: wire.OpClose})
		if errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrClosed) {
			err = nil // the server closes the socket right after answering
		}
	}
	c.stopOnce.Do(func() { close(c.stop) })
	c.fail(&Error{Code: CodeClosed, Message: "client closed", Index: -1})
	c.wg.Wait()
	if err != nil {
		return fmt.Errorf("arbor: close session %s: %w", c.session, err)
	}
	return nil
}
