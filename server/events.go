package server

import (
	"encoding/json"
	"sync"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/tree"
	"github.com/arbor-db/arbor/watch"
)

// A connection's pushed watch events. apply (under the state machine's
// write lock) and the watch op (under its read lock) queue them; the
// connection's writer sends them. Before it writes a response evaluated at
// zxid Z it sends every queued event with zxid <= Z, in zxid order, so a
// read never overtakes the event of a change it observes; when it has no
// response to write it sends events as they come. The queue is bounded: a
// connection that falls that far behind is closed ("watch events
// overflowed"), never left to drop events, and its client resumes its
// watches since the last event it saw.

// queuedEvent is one frame for the writer: a watch event, a resync chunk
// or a lock answer.
type queuedEvent struct {
	zxid uint64
	size int // encoded bytes (estimated for resync chunks), for the queue's bound
	// A watch event's frame is watchPrefix, the watch id, then tail: the
	// rest, encoded once per change and shared by every watch it fired.
	watch  uint64
	tail   []byte
	resync *resyncFrame
	resp   *wire.Response // a lock or elect answered when granted
}

// resyncFrame is a resync event. It is encoded through a type of its own
// so that "last" and "nodes" are always present, as PROTOCOL.md shows them.
type resyncFrame struct {
	Event string      `json:"event"`
	Watch uint64      `json:"watch"`
	Zxid  uint64      `json:"zxid"`
	Nodes []wire.Node `json:"nodes"`
	Last  bool        `json:"last"`
}

// encode encodes a resync chunk or a lock answer (not a watch event).
func (qe *queuedEvent) encode() ([]byte, error) {
	if qe.resync != nil {
		return json.Marshal(qe.resync)
	}
	return encodeResponse(qe.resp)
}

// eventQueue is the bounded queue of one connection, in zxid order.
type eventQueue struct {
	maxEvents, maxBytes int
	// ready holds a token while events are queued; a writer waiting for a
	// response selects on it. wake (if set) starts a writer when none
	// runs; push calls it after releasing mu.
	ready chan struct{}
	wake  func()

	mu    sync.Mutex
	evs   []queuedEvent
	bytes int
	dead  bool // overflowed or dropped: the connection is closing
}

func newEventQueue(maxEvents, maxBytes int) *eventQueue {
	return &eventQueue{maxEvents: maxEvents, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// push queues evs (zxids ascending) in zxid order after every queued event
// of the same or a lower zxid. Over the bound, unless force, it queues
// nothing, marks the queue dead and returns false: the caller closes the
// connection. A dead queue takes nothing more (and reports true: it was
// already reported). It never blocks.
func (q *eventQueue) push(evs []queuedEvent, force bool) bool {
	if len(evs) == 0 {
		return true
	}
	ok, queued := q.add(evs, force)
	if queued && q.wake != nil {
		// After mu, never under it (the writer takes mu under its wmu): a
		// writer ending its turn checks queued under wmu, then this
		// starts the next one, so no wakeup is lost.
		q.wake()
	}
	return ok
}

// add is push under mu; queued reports whether it queued evs.
func (q *eventQueue) add(evs []queuedEvent, force bool) (ok, queued bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.dead {
		return true, false
	}
	size := 0
	for i := range evs {
		size += evs[i].size
	}
	if !force && (len(q.evs)+len(evs) > q.maxEvents || q.bytes+size > q.maxBytes) {
		q.dead = true
		clear(q.evs)
		q.evs, q.bytes = nil, 0
		return false, false
	}
	if n := len(q.evs); n == 0 || q.evs[n-1].zxid <= evs[0].zxid {
		q.evs = append(q.evs, evs...) // apply's case: always at the end
	} else {
		q.evs = mergeByZxid(q.evs, evs) // a replay behind live events
	}
	q.bytes += size
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true, true
}

// queued reports whether events wait to be written.
func (q *eventQueue) queued() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.evs) > 0
}

// mergeByZxid merges b into a, both in zxid order, a's events first among
// equal zxids.
func mergeByZxid(a, b []queuedEvent) []queuedEvent {
	out := make([]queuedEvent, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i].zxid <= b[j].zxid {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// take removes and returns the queued events with zxid <= upTo.
func (q *eventQueue) take(upTo uint64) []queuedEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for n < len(q.evs) && q.evs[n].zxid <= upTo {
		q.bytes -= q.evs[n].size
		n++
	}
	if n == 0 {
		return nil
	}
	out := q.evs[:n:n]
	if n == len(q.evs) {
		q.evs = nil
	} else {
		q.evs = append([]queuedEvent(nil), q.evs[n:]...)
		select { // the rest is still there for the writer
		case q.ready <- struct{}{}:
		default:
		}
	}
	return out
}

// close drops what is queued and takes nothing more.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.dead = true
	q.evs, q.bytes = nil, 0
	q.mu.Unlock()
}

// watchEvent is the event frame of watch id for the change whose frame
// tail is tail (eventTail).
func watchEvent(id, zxid uint64, tail []byte) queuedEvent {
	return queuedEvent{zxid: zxid, size: len(watchPrefix) + 20 + len(tail), watch: id, tail: tail}
}

// eventTail encodes what follows the watch id in the event frame of ev:
// the bytes json.Marshal gives for the wire.Event after its "watch"
// field, so a spliced frame is exactly the frame of PROTOCOL.md.
func eventTail(ev tree.Event) []byte {
	// It cannot fail: every field is a string, a number or bytes.
	b, _ := json.Marshal(&wire.Event{Event: wire.EventWatch, Type: wireEventType(ev.Type),
		Path: ev.Path, Zxid: ev.Zxid, Data: ev.Data})
	return b[len(`{"event":"watch"`):]
}

// tailCache encodes each change's event tail once for all the watches it
// fires: Match reports a change's watches together. A change has two
// encodings, without data (one-shot watches, deleted and children events)
// and with it; the latter is keyed by the data's identity too, since one
// multi may set a node twice at the same zxid.
type tailCache struct {
	zxid uint64
	typ  tree.EventType
	path string
	bare []byte // the tail without data
	data []byte // what full encodes
	full []byte // the tail with data
}

func (tc *tailCache) tail(ev tree.Event) []byte {
	if ev.Zxid != tc.zxid || ev.Type != tc.typ || ev.Path != tc.path {
		*tc = tailCache{zxid: ev.Zxid, typ: ev.Type, path: ev.Path}
	}
	if len(ev.Data) == 0 {
		if tc.bare == nil {
			tc.bare = eventTail(ev)
		}
		return tc.bare
	}
	if tc.full == nil || len(tc.data) != len(ev.Data) || &tc.data[0] != &ev.Data[0] {
		tc.data, tc.full = ev.Data, eventTail(ev)
	}
	return tc.full
}

func wireEventType(t tree.EventType) string {
	switch t {
	case tree.EventCreated:
		return wire.WatchCreated
	case tree.EventDeleted:
		return wire.WatchDeleted
	case tree.EventDataChanged:
		return wire.WatchData
	case tree.EventChildrenChanged:
		return wire.WatchChildren
	}
	return ""
}

// queueFired queues what one command fired on the connections that watch,
// each connection's events together and in order. Called by apply with the
// state machine's write lock held; never blocks. A connection whose queue
// overflows is closed.
func queueFired(fired []watch.Fired[*conn]) {
	if len(fired) == 0 {
		return
	}
	var order []*conn
	per := make(map[*conn][]queuedEvent)
	var tails tailCache
	for _, f := range fired {
		if bugWatchDrop && f.Event.Type == tree.EventDataChanged && f.Event.Zxid%40 == 0 {
			continue
		}
		if _, ok := per[f.Owner]; !ok {
			order = append(order, f.Owner)
		}
		per[f.Owner] = append(per[f.Owner], watchEvent(f.ID, f.Event.Zxid, tails.tail(f.Event)))
	}
	for _, c := range order {
		if !c.events.push(per[c], false) {
			c.srv.metrics.watchSlowClosed.Inc()
			c.srv.log.Info("closing a connection that fell behind on watch events", "session", wire.FormatSession(c.session),
				"remote", c.ws.RemoteAddr().String(), "max_events", c.events.maxEvents, "max_bytes", c.events.maxBytes)
			c.end(endOverflow, closeOverflow)
		}
	}
}

// Close reasons of connections whose watch events cannot go on.
const (
	closeOverflow    = "watch events overflowed; resume with since"
	closeWatchesLost = "this member installed a snapshot; register watches again with since"
)

// flushEvents gathers the queued events with zxid <= upTo (writing them
// out when they grow large); writer only.
func (c *conn) flushEvents(upTo uint64) error {
	evs := c.events.take(upTo)
	sent := 0
	for i := range evs {
		qe := &evs[i]
		if qe.tail != nil {
			if !c.out.addWatchEvent(qe.watch, qe.tail) {
				if err := c.sendOut(); err != nil {
					return err
				}
			}
			sent++
			continue
		}
		b, err := qe.encode()
		if err != nil {
			return err
		}
		if err := c.writeFrame(b); err != nil {
			return err
		}
		if qe.resp == nil {
			sent++
		}
	}
	if sent > 0 {
		c.srv.metrics.watchEvents.Add(float64(sent))
	}
	return nil
}
