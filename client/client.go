package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// Defaults of Config.
const (
	DefaultSessionTimeout      = 10 * time.Second
	DefaultDialTimeout         = 5 * time.Second
	DefaultReconnectBackoff    = 25 * time.Millisecond
	DefaultMaxReconnectBackoff = time.Second
)

// Config configures Dial. Only Endpoints is required.
type Config struct {
	// Endpoints are members to try, as HOST:PORT; one is enough (see
	// NoDiscovery). Sessions spread across the members: a new session goes
	// to the next live member of a rotation the Clients of a process share
	// (with a random start), and after a disconnect the client resumes its
	// session on the other members, live ones first, in random order, the
	// one it lost last. See InOrder for a session on a given member.
	Endpoints []string
	// InOrder makes Dial try Endpoints in the order given, and a reconnect
	// go on to the next endpoint after the one it lost (then the members
	// learned, cycling), as a program that wants its session on a given
	// member needs: a test of that member, or a client kept beside its
	// member. With NoDiscovery and one endpoint the session is on that
	// member or nowhere.
	InOrder bool
	// SessionTimeout is the requested session timeout (the server clamps it
	// to its own bounds). Default 10s.
	SessionTimeout time.Duration
	// DialTimeout bounds the connection and hello to one endpoint, at Dial
	// and at every reconnection attempt. Default 5s.
	DialTimeout time.Duration
	// ReconnectBackoff is the wait before the first reconnection attempt
	// after a disconnect; it doubles after every failed attempt up to
	// MaxReconnectBackoff and starts over after a successful resume. Each
	// wait is jittered by ±50% so that clients cut off together do not come
	// back together. Defaults 25ms and 1s.
	ReconnectBackoff    time.Duration
	MaxReconnectBackoff time.Duration
	// MaxFrameBytes bounds an incoming frame. Default wire.DefaultMaxFrame.
	MaxFrameBytes int64
	// AuthToken is sent with every hello (new session and resume) when set.
	AuthToken string
	// NetDialContext, when set, opens the network connection to an endpoint
	// instead of net.Dialer (for proxies, unix sockets or in-memory tests).
	// addr is the endpoint as given in Endpoints.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnEvent, when set, receives every pushed event (watches, session
	// state). It is called on the reader goroutine and must not block.
	OnEvent func(ev *wire.Response)
	// NoDiscovery keeps the client to Endpoints. By default, the client
	// asks a member for the cluster's members when it resumes its session,
	// when a ping says they changed (members_hash), and when it opens a
	// session unless another Client of the process dialling the same
	// Endpoints has done so recently; it adds their client addresses to
	// the endpoints it spreads over and fails over to, so one address of a
	// running cluster is enough. With NetDialContext set nothing learned is
	// shared between Clients (the dialer may map the same names elsewhere
	// for another Config), so each asks for itself.
	NoDiscovery bool
}

// Client is a session with an Arbor cluster, kept across disconnects. It is
// safe for concurrent use.
type Client struct {
	cfg Config
	log *slog.Logger

	// Fixed after Dial.
	session string
	secret  string
	timeout time.Duration // granted by the server
	margin  time.Duration // see sessionMargin

	nextID   atomic.Uint64
	lastZxid atomic.Uint64
	expired  atomic.Bool

	states chan State // see States; sent to only with mu held

	// run is cancelled when the client reaches a terminal state (expired
	// or closed): it stops reconnecting and every dial.
	run     context.Context
	stopRun context.CancelFunc
	wg      sync.WaitGroup
	// deadlineT enters Jeopardy when it fires past the deadline (a timer
	// rather than a goroutine: it runs only then). Set in begin, guarded
	// by mu; terminate stops it.
	deadlineT *time.Timer

	mu     sync.Mutex
	cur    *conn         // the live connection; nil while disconnected
	up     chan struct{} // closed once cur is set; replaced when cur breaks
	server string        // member of the last live connection
	eps    []string      // Config.Endpoints, then the members learned (discover.go)
	// members is the last members answer (for failover order).
	members []wire.Member
	// view is shared with the process's other Clients of the same
	// Endpoints (spread.go); nil when nothing is shared. Fixed after Dial.
	view *clusterView
	// membersHash is the last members fingerprint a ping answered.
	membersHash atomic.Uint64
	closing     bool          // Close was called: never reconnect again
	closed      bool          // Close finished its work: state Closed
	over        *Error        // why calls fail for good (expired or closed); nil while usable
	overC       chan struct{} // closed when over is set
	state       State
	deadline    time.Time // see session.go
	jeopardy    bool
	sessCtx     context.Context
	sessStop    context.CancelCauseFunc
}

// Dial opens a new session on a member: the next live member of the
// process's rotation over the members it knows (Config.Endpoints and what
// it learned), or with Config.InOrder the first endpoint that accepts a
// WebSocket and answers hello. The first state on States is Connected.
//
// Dial tries each endpoint once and fails fast: when none is usable it
// returns an *Error with code UNAVAILABLE whose message says, per endpoint,
// why (connection refused, timed out, or what the member answered, such as
// "no leader: the cluster has no quorum right now"); errors.Is(err,
// ErrUnavailable) holds. An error hello answered otherwise (AUTH_FAILED, ...)
// is returned as is, since another member would answer the same. An
// endpoint that is not HOST:PORT (no port, a URL scheme, a path) fails at
// once with code BAD_REQUEST, and errors.Is(err, ErrBadEndpoint) holds; with
// Config.NetDialContext set, endpoints are passed to it unchecked.
//
// A program that starts alongside its cluster, and so may find no member
// up or no leader yet, retries Dial itself for as long as it is willing to
// wait (the arbor CLI does so until its --timeout):
//
//	for {
//		c, err = client.Dial(ctx, cfg)
//		if !errors.Is(err, client.ErrUnavailable) || ctx.Err() != nil {
//			break
//		}
//		time.Sleep(100 * time.Millisecond) // or a timer in a select on ctx.Done()
//	}
//
// Dial has no option for that wait because its length, and what to tell
// the user meanwhile, belong to the caller.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, &Error{Code: wire.CodeBadRequest, Message: "no endpoints given", Index: -1}
	}
	if cfg.NetDialContext == nil {
		for _, ep := range cfg.Endpoints {
			if err := checkEndpoint(ep); err != nil {
				return nil, err
			}
		}
	}
	cfg = withDefaults(cfg)
	view := viewFor(cfg)
	c, err := dialOnce(ctx, cfg, view, true)
	if errors.Is(err, errStaleView) {
		// A member the view named is now another member (or in another
		// cluster): start over from Endpoints alone.
		view.forget()
		c, err = dialOnce(ctx, cfg, view, false)
	}
	return c, err
}

// errStaleView: the member at an address the view gave is not the one the
// view named there.
var errStaleView = errors.New("arbor: the members learned earlier have changed")

// dialOnce opens a session as Dial says, with the members of view when it is
// fresh and useView.
func dialOnce(ctx context.Context, cfg Config, view *clusterView, useView bool) (*Client, error) {
	c := newClient(cfg)
	c.view = view
	turn := rand.Uint64()
	var names map[string]string // of the view's members, by address
	if view != nil {
		turn = view.turn()
		if ms, hash, ok := view.snapshot(); ok && useView && !cfg.NoDiscovery {
			c.learn(ms, hash)
			names = memberNames(ms)
		}
	}
	var lastErr error
	var failed []endpointFailure
	for _, i := range dialOrder(c.eps, liveMembers(c.members), turn, cfg.InOrder) {
		ep := c.eps[i] // no goroutine of c runs yet
		cn, resp, sentAt, err := c.open(ctx, i, false)
		if err == nil && names[ep] != "" && resp.Server != names[ep] {
			c.log.Debug("arbor: learned members are stale", "endpoint", ep,
				"want", names[ep], "server", resp.Server)
			c.abandon(cn)
			c.stopRun()
			return nil, errStaleView
		}
		if err == nil {
			c.begin(cn, resp, sentAt, names == nil)
			return c, nil
		}
		var e *Error
		if errors.As(err, &e) && e.Code != wire.CodeUnavailable {
			// The member answered and refused: another member would too.
			c.stopRun()
			return nil, err
		}
		c.log.Debug("arbor: endpoint unusable", "endpoint", ep, "err", err)
		lastErr = err
		failed = append(failed, endpointFailure{endpoint: ep, why: whyUnusable(ctx, err)})
		if ctx.Err() != nil {
			break
		}
	}
	c.stopRun()
	return nil, &Error{
		Code:    wire.CodeUnavailable,
		Message: describeFailures(failed),
		Index:   -1,
		cause:   lastErr,
	}
}

func withDefaults(cfg Config) Config {
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.ReconnectBackoff <= 0 {
		cfg.ReconnectBackoff = DefaultReconnectBackoff
	}
	if cfg.MaxReconnectBackoff <= 0 {
		cfg.MaxReconnectBackoff = DefaultMaxReconnectBackoff
	}
	cfg.MaxReconnectBackoff = max(cfg.MaxReconnectBackoff, cfg.ReconnectBackoff)
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = wire.DefaultMaxFrame
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

func newClient(cfg Config) *Client {
	c := &Client{
		cfg:    cfg,
		eps:    slices.Clone(cfg.Endpoints),
		log:    cfg.Logger,
		states: make(chan State, StateBuffer),
		overC:  make(chan struct{}),
	}
	c.run, c.stopRun = context.WithCancel(context.Background())
	c.sessCtx, c.sessStop = context.WithCancelCause(context.Background())
	return c
}

// begin adopts the session hello opened on cn and starts the owned
// goroutines; Close stops them. With ask it asks for the members.
func (c *Client) begin(cn *conn, resp *wire.Response, sentAt time.Time, ask bool) {
	c.session, c.secret = resp.Session, resp.Secret
	c.timeout = time.Duration(resp.TimeoutMs) * time.Millisecond
	if c.timeout <= 0 {
		c.timeout = c.cfg.SessionTimeout
	}
	c.margin = sessionMargin(c.timeout)
	c.log.Debug("arbor: session open", "endpoint", cn.endpoint, "session", c.session,
		"server", cn.server, "timeout", c.timeout)
	c.mu.Lock()
	c.deadline = sentAt.Add(c.timeout - c.margin)
	c.deadlineT = time.AfterFunc(time.Until(c.deadline), c.enterJeopardy)
	c.cur, c.server = cn, cn.server
	c.up = make(chan struct{})
	close(c.up)
	c.setStateLocked()
	c.mu.Unlock()
	c.wg.Go(func() { c.supervise(cn) })
	if ask {
		c.mu.Lock()
		c.discover()
		c.mu.Unlock()
	}
}

// Session returns the session id (16 hex digits).
func (c *Client) Session() string { return c.session }

// SessionTimeout returns the timeout the server granted.
func (c *Client) SessionTimeout() time.Duration { return c.timeout }

// Server returns the name of the member this client is connected to, or
// was last connected to while it is disconnected.
func (c *Client) Server() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.server
}

// LastZxid returns the highest zxid seen in any response or event.
func (c *Client) LastZxid() uint64 { return c.lastZxid.Load() }

// Expired reports whether the session has expired: the cluster said so, or
// refused to resume it.
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
//
// While the client is disconnected Do waits, bounded by ctx, for the session
// to be resumed and then sends the request. A read (any op but the writes
// listed on Error) whose connection breaks before its answer is sent again
// on the next connection; a write fails with CONNECTION_LOST and
// Indeterminate set, since it may have been applied.
func (c *Client) Do(ctx context.Context, req *wire.Request) (*wire.Response, error) {
	if req.Op == wire.OpHello {
		return nil, &Error{Code: wire.CodeBadRequest, Message: "hello is sent by Dial", Index: -1}
	}
	for {
		cn, err := c.await(ctx)
		if err != nil {
			return nil, err
		}
		resp, _, err := c.send(ctx, cn, req)
		if errors.Is(err, errResend) {
			continue
		}
		return resp, err
	}
}

// errResend is what send answers when the request never reached the
// connection, or was a read: Do sends it again once reconnected.
var errResend = errors.New("arbor: send again on the next connection")

// await returns the live connection, waiting for a resume if there is none.
func (c *Client) await(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		if c.over != nil {
			e := *c.over
			c.mu.Unlock()
			return nil, &e
		}
		cn, up := c.cur, c.up
		c.mu.Unlock()
		if cn != nil {
			return cn, nil
		}
		select {
		case <-up:
		case <-c.overC:
		case <-ctx.Done():
			return nil, ctxError(ctx, false)
		}
	}
}

// send writes req on cn and waits for its answer. It returns errResend when
// Do should send it again, and the time it queued the request: the request
// reached the member no earlier than that.
func (c *Client) send(ctx context.Context, cn *conn, req *wire.Request) (*wire.Response, time.Time, error) {
	cl := &call{op: req.Op, id: c.nextID.Add(1), ch: make(chan result, 1)}
	req.ID = cl.id
	frame, err := wire.AppendRequest(nil, req)
	if err != nil {
		return nil, time.Time{}, &Error{Code: wire.CodeBadRequest, Message: err.Error(), Index: -1, cause: err}
	}
	cl.frame = frame
	c.mu.Lock()
	if cn.pending == nil { // broken since await
		c.mu.Unlock()
		return nil, time.Time{}, errResend
	}
	cn.pending[cl.id] = cl
	c.mu.Unlock()

	queued := time.Now()
	select {
	case cn.sendq <- cl:
	case <-cn.dead:
		// Never queued, so never sent; breakConn answered cl, but cl is
		// dropped here.
		return nil, queued, errResend
	case <-ctx.Done():
		c.forget(cn, cl.id)
		return nil, queued, ctxError(ctx, false)
	}
	select {
	case r := <-cl.ch:
		if r.err != nil {
			return r.resp, queued, r.err
		}
		return r.resp, queued, nil
	case <-ctx.Done():
		c.forget(cn, cl.id)
		return nil, queued, ctxError(ctx, writeOps[req.Op])
	}
}

func (c *Client) forget(cn *conn, id uint64) {
	c.mu.Lock()
	delete(cn.pending, id)
	c.mu.Unlock()
}

func ctxError(ctx context.Context, indeterminate bool) *Error {
	code := CodeCanceled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code = wire.CodeTimeout
	}
	return &Error{Code: code, Message: ctx.Err().Error(), Index: -1, Indeterminate: indeterminate, cause: ctx.Err()}
}

// Close ends the session: the cluster deletes its ephemeral nodes. It waits
// for the answer (bounded by ctx), then stops every goroutine of the Client.
// While the client is disconnected it does not wait for a reconnection: it
// just stops, and the cluster expires the session after its timeout. It
// returns nil when the session was closed or was already gone (expired, or
// Close was called before); the last state is Closed.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		c.wg.Wait()
		return nil
	}
	c.closing = true // the server hangs up after answering: do not reconnect
	cn, usable := c.cur, c.over == nil
	c.mu.Unlock()

	var err error
	if usable && cn != nil {
		_, _, err = c.send(ctx, cn, &wire.Request{Op: wire.OpClose})
		if errors.Is(err, errResend) || errors.Is(err, ErrConnectionLost) {
			err = nil // the server closes the socket right after answering
		}
	}
	c.terminate(&Error{Code: CodeClosed, Message: "client closed", Index: -1}, true)
	c.wg.Wait()
	if err != nil {
		return fmt.Errorf("arbor: close session %s: %w", c.session, err)
	}
	return nil
}

// terminate makes reason the answer of every later call, stops the owned
// goroutines and breaks the live connection. With closed it also reports
// Closed and closes the States channel (after Expired, when the session
// expired first).
func (c *Client) terminate(reason *Error, closed bool) {
	c.mu.Lock()
	if c.over == nil {
		c.over = reason
		close(c.overC)
	}
	if reason.Code == wire.CodeSessionExpired {
		c.expired.Store(true)
	}
	c.closed = c.closed || closed
	if c.sessCtx.Err() != nil && !errors.Is(context.Cause(c.sessCtx), c.over) {
		// Cancelled by Jeopardy: Context now says why the session ended.
		c.sessCtx, c.sessStop = context.WithCancelCause(context.Background())
	}
	c.sessStop(c.over)
	if c.deadlineT != nil {
		c.deadlineT.Stop()
	}
	cn := c.cur
	c.setStateLocked()
	if closed {
		close(c.states)
	}
	c.mu.Unlock()
	c.stopRun()
	if cn != nil {
		c.breakConn(cn, c.over)
	}
}
