package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// EventType says what a WatchEvent reports.
type EventType uint8

// Event types. EventCreated, EventDeleted, EventData and EventChildren are
// the protocol's; EventResync is the client's own (see WatchEvent).
const (
	EventCreated EventType = iota + 1
	EventDeleted
	EventData
	EventChildren
	EventResync
)

func (t EventType) String() string {
	switch t {
	case EventCreated:
		return "created"
	case EventDeleted:
		return "deleted"
	case EventData:
		return "data"
	case EventChildren:
		return "children"
	case EventResync:
		return "resync"
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Node is a node as a resync reports it.
type Node = wire.Node

// WatchEvent is one event of a watch.
//
// A resync (EventResync) replaces everything before it: the member no
// longer held the changes the watch missed while it was disconnected, so
// it sent the watched state as it stands at Zxid instead. Nodes holds it,
// parents first: for a Recursive watch the node and its whole subtree, for
// a persistent watch of one node the node and its children, and nothing
// when the node does not exist. The events after it are the changes after
// Zxid. A watch that always reconnects within the member's history never
// sees one.
//
// Err is set only on the last event of a one-shot watch that could not be
// kept (ErrWatchLost): Type is then 0.
type WatchEvent struct {
	Type  EventType
	Path  string // the node that changed; for EventResync the watched path
	Zxid  uint64
	Data  []byte // persistent watches: the new data on EventCreated and EventData
	Nodes []Node // EventResync only
	Err   error
}

// Errors of watches.
var (
	// ErrWatchOverflow ends a watch whose Events channel was full when an
	// event arrived: the client never blocks its reader on a slow consumer.
	// Watch again with Since(the last Zxid received) to go on without a gap.
	ErrWatchOverflow = errors.New("arbor: watch events overflowed the buffer; watch again with Since")
	// ErrWatchLost ends a one-shot watch whose connection broke before it
	// fired: the new member has no such watch. Read again with WatchOnce.
	ErrWatchLost = errors.New("arbor: connection lost before the one-shot watch fired; read again to watch")
	// ErrWatchClosed is Err of a Watcher after Close.
	ErrWatchClosed = errors.New("arbor: watch closed")
)

// DefaultWatchBuffer is the Events buffer of a Watcher (WatchBuffer).
const DefaultWatchBuffer = 1024

// WatchOption modifies a Watch. Recursive (also a DeleteOption) is one.
type WatchOption interface{ applyWatch(*watchConfig) }

type watchConfig struct {
	recursive bool
	since     uint64
	buffer    int
}

type watchOptionFunc func(*watchConfig)

func (f watchOptionFunc) applyWatch(w *watchConfig) { f(w) }

// applyWatch makes Recursive a WatchOption: watch the node and its subtree.
func (o DeleteOption) applyWatch(w *watchConfig) {
	var r wire.Request
	o(&r)
	w.recursive = w.recursive || r.Recursive
}

// Since starts the watch with every change after zxid (the member waits
// until it has applied zxid), or with a resync when the member no longer
// holds them.
func Since(zxid uint64) WatchOption { return watchOptionFunc(func(w *watchConfig) { w.since = zxid }) }

// WatchBuffer sets how many events the Events channel holds (default
// DefaultWatchBuffer); a watch whose buffer is full ends with
// ErrWatchOverflow. The channel is allocated whole when the watch is set,
// about 100 bytes an event (some 96 KiB a watch by default): a process
// holding thousands of watches wants a smaller buffer, or one recursive
// watch of their parent.
func WatchBuffer(n int) WatchOption {
	return watchOptionFunc(func(w *watchConfig) { w.buffer = max(n, 1) })
}

// Watcher is a persistent watch: it reports every change of its node (or
// subtree) once, in zxid order, across reconnections, until Close.
type Watcher struct {
	c         *Client
	path      string
	recursive bool
	oneShot   bool // ends with its first event (WatchOnce)
	ch        chan WatchEvent

	// Guarded by Client.mu: where the watch is registered now. cn is nil
	// while it is being registered again.
	cn        *conn
	id        uint64
	bindCount uint64 // cn.settleCount when the watch was registered on cn

	mu         sync.Mutex // delivery; never held while taking Client.mu
	closed     bool
	err        error
	last       uint64 // zxid of the last event delivered (or where the watch began)
	seenAtLast int    // events delivered at last
	skip       int    // after a re-registration: events at skipZxid already delivered
	skipZxid   uint64
	resync     []Node // chunks of a resync so far
}

// Watch sets a persistent watch on path (Recursive: and its subtree) and
// returns it once the member has registered it. Events come on Events.
// After a reconnection the client registers the watch again since the last
// event it delivered, so there is no gap and no duplicate (or a resync,
// when the new member no longer has those changes).
func (c *Client) Watch(ctx context.Context, path string, opts ...WatchOption) (*Watcher, error) {
	cfg := watchConfig{buffer: DefaultWatchBuffer}
	for _, o := range opts {
		o.applyWatch(&cfg)
	}
	w := &Watcher{c: c, path: path, recursive: cfg.recursive, ch: make(chan WatchEvent, cfg.buffer), last: cfg.since}
	req := w.request(cfg.since)
	_, err := c.doRegister(ctx, req, func(cn *conn, resp *wire.Response) {
		c.bind(w, cn, resp)
		if cfg.since == 0 {
			w.mu.Lock()
			w.last = resp.Zxid
			w.mu.Unlock()
		}
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Watcher) request(since uint64) *wire.Request {
	return &wire.Request{Op: wire.OpWatch, Path: w.path, Recursive: w.recursive, Since: since}
}

// bind records that w is registered on cn as resp says. Reader goroutine
// of cn, before any event of the watch.
func (c *Client) bind(w *Watcher, cn *conn, resp *wire.Response) {
	c.mu.Lock()
	w.cn, w.id, w.bindCount = cn, resp.Watch, cn.settleCount.Load()
	if cn.watches != nil {
		cn.watches[resp.Watch] = w
	} else {
		// cn broke meanwhile: the next connection registers it again.
		cn.orphans = append(cn.orphans, w)
	}
	c.mu.Unlock()
}

// Events returns the channel of the watch's events. It is closed when the
// watch ends: Close, overflow, or the end of the session; Err says why.
func (w *Watcher) Events() <-chan WatchEvent { return w.ch }

// Err returns why the watch ended, or nil while it runs.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Sync returns a zxid Z such that every event of the watch up to Z is on
// Events (or was taken from it): after Sync, a consumer that drains Events
// has seen every change up to Z, and a cache built from them is exact at
// Z. It is the answer to a read of the watched path sent, on the
// connection the watch is registered on, after it was registered there (a
// member sends every event up to an answer's zxid before the answer). An
// answer on any other connection proves nothing about the watch's events:
// after a reconnection Sync waits until the watch is registered again.
// It fails with the watch's error once the watch has ended.
func (w *Watcher) Sync(ctx context.Context) (uint64, error) {
	c := w.c
	for {
		if err := w.Err(); err != nil {
			return 0, err
		}
		c.mu.Lock()
		cn := w.cn
		c.mu.Unlock()
		if cn == nil {
			// Being registered again after a reconnection.
			select {
			case <-ctx.Done():
				return 0, ctxError(ctx, false)
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		resp, err := c.sendHooked(ctx, cn, &wire.Request{Op: wire.OpExists, Path: w.path}, nil)
		if errors.Is(err, errResend) || errors.Is(err, ErrConnectionLost) {
			continue // the connection broke: the watch moves, then again
		}
		if err != nil {
			return 0, err
		}
		c.mu.Lock()
		same := w.cn == cn
		c.mu.Unlock()
		if same {
			return resp.Zxid, nil
		}
	}
}

// Close removes the watch (unwatch on the member) and closes Events.
func (w *Watcher) Close(ctx context.Context) error {
	c := w.c
	c.mu.Lock()
	cn, id := w.cn, w.id
	if cn != nil && cn.watches != nil {
		delete(cn.watches, id)
	}
	w.cn = nil
	c.mu.Unlock()
	if !w.end(ErrWatchClosed) {
		return nil
	}
	if cn == nil {
		return nil // not registered anywhere now
	}
	req := &wire.Request{Op: wire.OpUnwatch}
	req.SetWatchID(id)
	_, _, err := c.send(ctx, cn, req)
	if errors.Is(err, errResend) || errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrBadRequest) {
		return nil // the connection, and so the watch, is gone, or it was already
	}
	return err
}

// end closes the watch with err, once; it reports whether this call did.
func (w *Watcher) end(err error) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.closed, w.err = true, err
	close(w.ch)
	return true
}

// deliver hands one watch or resync event of w, read on the connection
// whose dead channel is dead, to its channel. Reader goroutine; it never
// blocks.
func (w *Watcher) deliver(dead <-chan struct{}, ev *wire.Response) (ended bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return true
	}
	if brokeUnder(dead) {
		return false
	}
	if ev.Event == wire.EventResync {
		w.resync = append(w.resync, ev.Nodes...)
		if !ev.Last {
			return false
		}
		out := WatchEvent{Type: EventResync, Path: w.path, Zxid: ev.Zxid, Nodes: w.resync}
		w.resync, w.skip = nil, 0
		w.last, w.seenAtLast = ev.Zxid, 0
		return w.handOutLocked(out)
	}
	return w.changeLocked(eventType(ev.Type), ev.Path, ev.Zxid, ev.Data)
}

// deliverChange is deliver for one watch event (the decoder's fast path,
// decodeWatchEvent).
func (w *Watcher) deliverChange(dead <-chan struct{}, typ EventType, path string, zxid uint64, data []byte) (ended bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return true
	}
	if brokeUnder(dead) {
		return false
	}
	return w.changeLocked(typ, path, zxid, data)
}

// brokeUnder reports whether the connection whose dead channel is dead
// broke: its watches are being registered on the next one, which replays
// what they have not delivered, so an event still read on it is dropped
// (delivered, it would come again). Checked under the watcher's mu, which
// resumeSince takes too: an event is either counted in the resume point or
// not delivered.
func brokeUnder(dead <-chan struct{}) bool {
	select {
	case <-dead:
		return true
	default:
		return false
	}
}

// changeLocked delivers a watch event, unless it was delivered already
// (before a reconnection). w.mu held.
func (w *Watcher) changeLocked(typ EventType, path string, zxid uint64, data []byte) (ended bool) {
	if w.skip > 0 && zxid == w.skipZxid {
		w.skip-- // delivered before the reconnection
		return false
	}
	w.skip = 0
	if zxid < w.last {
		return false // older than what was delivered: never sent twice
	}
	if zxid == w.last {
		w.seenAtLast++
	} else {
		w.last, w.seenAtLast = zxid, 1
	}
	return w.handOutLocked(WatchEvent{Type: typ, Path: path, Zxid: zxid, Data: data})
}

// handOutLocked gives out to the consumer; a full buffer ends the watch
// (ErrWatchOverflow), and so does a one-shot's event. w.mu held.
func (w *Watcher) handOutLocked(out WatchEvent) (ended bool) {
	// Into the channel before the reader reads on: an event received
	// before a response is in Events by the time the response returns
	// (TreeCache relies on it), so the channel is the whole buffer.
	select {
	case w.ch <- out:
	default:
		w.closed, w.err = true, ErrWatchOverflow
		close(w.ch)
		return true
	}
	if w.oneShot {
		w.closed = true
		close(w.ch)
		return true
	}
	return false
}

func eventType(s string) EventType {
	switch s {
	case wire.WatchCreated:
		return EventCreated
	case wire.WatchDeleted:
		return EventDeleted
	case wire.WatchData:
		return EventData
	case wire.WatchChildren:
		return EventChildren
	}
	return 0
}

// routeWatchEvent delivers a watch or resync event of cn to its watcher.
// Events of a watch this client no longer has (closed, or unwatched) are
// dropped.
func (c *Client) routeWatchEvent(cn *conn, ev *wire.Response) {
	c.mu.Lock()
	w := cn.watches[ev.Watch]
	c.mu.Unlock()
	if w != nil && w.deliver(cn.dead, ev) {
		c.watchEnded(cn, ev.Watch, w)
	}
}

// watchEnded forgets watch id of cn, which overflowed or (a one-shot)
// fired, and unwatches a persistent one on the member.
func (c *Client) watchEnded(cn *conn, id uint64, w *Watcher) {
	c.mu.Lock()
	if cn.watches != nil {
		delete(cn.watches, id)
	}
	w.cn = nil
	c.mu.Unlock()
	if !w.oneShot {
		req := &wire.Request{Op: wire.OpUnwatch}
		req.SetWatchID(id)
		c.sendNoWait(cn, req)
	}
}

// resumeSince returns the since to register w with again, and sets up w
// to skip the events at since+1 it has delivered already.
// Every answer on a connection other than a watch's comes after all events
// up to its zxid (the member sends events first), so the watch is complete
// up to the last such zxid after it was registered (cn.settled).
func (w *Watcher) resumeSince(settled uint64) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if settled > w.last {
		w.last, w.seenAtLast = settled, 0
	}
	if w.seenAtLast > 0 {
		w.skip, w.skipZxid = w.seenAtLast, w.last
		return w.last - 1
	}
	w.skip = 0
	return w.last
}

// rewatch registers on cn every persistent watch that was registered on
// old, since the last event it delivered.
// It runs on its own goroutine of serve(cn) and stops when cn breaks
// (then the next connection takes the watches over from cn).
func (c *Client) rewatch(old, cn *conn) {
	c.mu.Lock()
	ws := old.orphans
	old.orphans = nil
	settled, count := old.settled.Load(), old.settleCount.Load()
	c.mu.Unlock()
	for _, w := range ws {
		w.mu.Lock()
		closed := w.closed
		w.mu.Unlock()
		if closed {
			continue
		}
		s := settled
		c.mu.Lock()
		if w.cn != old || count <= w.bindCount {
			s = 0 // no answer on old came after this watch was registered there
		}
		w.cn = nil
		c.mu.Unlock()
		since := w.resumeSince(s)
		_, err := c.sendHooked(c.run, cn, w.request(since), func(cn *conn, resp *wire.Response) { c.bind(w, cn, resp) })
		switch {
		case err == nil:
		case errors.Is(err, errResend) || errors.Is(err, ErrConnectionLost):
			// cn broke: hand the rest to the next connection.
			c.mu.Lock()
			cn.orphans = append(cn.orphans, w)
			c.mu.Unlock()
		default:
			// A member that refuses (limit, closed client): the watch ends
			// with the reason rather than silently.
			w.fail(err)
		}
	}
}

// fail ends w with err, delivering it as a last event to a one-shot.
func (w *Watcher) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if w.oneShot {
		select {
		case w.ch <- WatchEvent{Err: err}:
		default:
		}
	}
	w.closed, w.err = true, err
	close(w.ch)
}

// sendNoWait queues req on cn without waiting for the answer (unwatch of a
// watch the client dropped); if cn's queue is full it is not sent, and the
// member drops the watch with the connection.
func (c *Client) sendNoWait(cn *conn, req *wire.Request) {
	cl := &call{op: req.Op, id: c.nextID.Add(1), ch: make(chan result, 1)}
	req.ID = cl.id
	frame, err := json.Marshal(req)
	if err != nil {
		return
	}
	cl.frame = frame
	c.mu.Lock()
	if cn.pending == nil {
		c.mu.Unlock()
		return
	}
	cn.pending[cl.id] = cl
	c.mu.Unlock()
	select {
	case cn.sendq <- cl:
	default:
		c.forget(cn, cl.id)
	}
}

// doRegister is Do for a request that registers a watch: register runs on
// the reader goroutine with the successful answer, before any event after
// it is read.
func (c *Client) doRegister(ctx context.Context, req *wire.Request, register func(*conn, *wire.Response)) (*wire.Response, error) {
	for {
		cn, err := c.await(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := c.sendHooked(ctx, cn, req, register)
		if errors.Is(err, errResend) {
			continue
		}
		return resp, err
	}
}

// sendHooked is send with an onOK hook (see call.onOK).
func (c *Client) sendHooked(ctx context.Context, cn *conn, req *wire.Request, onOK func(*conn, *wire.Response)) (*wire.Response, error) {
	cl := &call{op: req.Op, id: c.nextID.Add(1), ch: make(chan result, 1), onOK: onOK}
	req.ID = cl.id
	frame, err := json.Marshal(req)
	if err != nil {
		return nil, &Error{Code: wire.CodeBadRequest, Message: err.Error(), Index: -1, cause: err}
	}
	cl.frame = frame
	c.mu.Lock()
	if cn.pending == nil {
		c.mu.Unlock()
		return nil, errResend
	}
	cn.pending[cl.id] = cl
	c.mu.Unlock()
	select {
	case cn.sendq <- cl:
	case <-cn.dead:
		return nil, errResend
	case <-ctx.Done():
		c.forget(cn, cl.id)
		return nil, ctxError(ctx, false)
	}
	select {
	case r := <-cl.ch:
		return r.resp, r.err
	case <-ctx.Done():
		// Forgotten, the answer registers nothing here; a watch the member
		// registered anyway sends events nobody routes, until the
		// connection ends.
		c.forget(cn, cl.id)
		return nil, ctxError(ctx, false)
	}
}
