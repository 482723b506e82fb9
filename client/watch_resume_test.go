package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
)

// scriptedMember is a member that answers hello and ping at zxid 5 and
// hands every other request to script, with the connection's number
// (1 for the first) and the default answer, OK at zxid 5; script writes
// what it wants and returns false to end the connection.
func scriptedMember(t *testing.T, script func(ws *websocket.Conn, conn int32, req *wire.Request, resp *wire.Response) bool) string {
	t.Helper()
	var conns atomic.Int32
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		n := conns.Add(1)
		for {
			var req wire.Request
			if err := ws.ReadJSON(&req); err != nil {
				return
			}
			resp := &wire.Response{ID: req.ID, OK: true, Zxid: 5}
			switch req.Op {
			case wire.OpHello:
				resp.Session, resp.Secret, resp.TimeoutMs, resp.Server = wire.FormatSession(1), "s", 10000, "m"
			case wire.OpPing:
			default:
				if !script(ws, n, &req, resp) {
					return
				}
				continue
			}
			if err := ws.WriteJSON(resp); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// dialWatch dials with cfg and watches /w; the client closes with the test.
func dialWatch(t *testing.T, cfg Config) (*Client, *Watcher) {
	t.Helper()
	c, err := Dial(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(cctx)
	})
	w, err := c.Watch(ctx(t), "/w")
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// awaitSince waits for the since of the watch registered again.
func awaitSince(t *testing.T, rewatched <-chan uint64, want uint64) {
	t.Helper()
	select {
	case since := <-rewatched:
		if since != want {
			t.Fatalf("registered again since %d, want %d", since, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch was not registered again within 10s")
	}
}

// A connection the member closes with 1013 (it installed a snapshot, or the
// watch events overflowed) dropped its watches: the client registers them
// again since the last event they delivered, not since the last answer's
// zxid, which may lie past what the member sent them. A connection that
// just breaks keeps the protocol's "complete up to Z" of its answers.
func TestRewatchSinceAfterDroppedWatches(t *testing.T) {
	for _, tc := range []struct {
		name      string
		end       func(ws *websocket.Conn)
		wantSince uint64
	}{
		// The event at 6 was delivered: since 5, skipping it.
		{"closed 1013", func(ws *websocket.Conn) {
			msg := websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "this member installed a snapshot; register watches again with since")
			_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		}, 5},
		// The answer at 20 came after every event up to 20.
		{"broken", func(ws *websocket.Conn) { ws.Close() }, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rewatched := make(chan uint64, 1)
			addr := scriptedMember(t, func(ws *websocket.Conn, conn int32, req *wire.Request, resp *wire.Response) bool {
				switch req.Op {
				case wire.OpWatch:
					resp.Watch = 1
					if conn > 1 {
						rewatched <- req.Since
						return ws.WriteJSON(resp) == nil
					}
					_ = ws.WriteJSON(resp)
					return ws.WriteJSON(&wire.Event{Event: wire.EventWatch, Watch: 1, Type: wire.WatchData, Path: "/w", Zxid: 6}) == nil
				case wire.OpExists:
					resp.Zxid = 20
					_ = ws.WriteJSON(resp)
					tc.end(ws)
					return false
				}
				return ws.WriteJSON(&wire.Response{ID: req.ID, Error: &wire.Error{Code: wire.CodeBadRequest, Message: "not in this script"}}) == nil
			})
			c, w := dialWatch(t, Config{Endpoints: []string{addr}, Logger: quiet, NoDiscovery: true})
			if ev := <-w.Events(); ev.Zxid != 6 {
				t.Fatalf("event %+v, want the one at zxid 6", ev)
			}
			if _, err := c.Exists(ctx(t), "/x"); err != nil {
				t.Fatal(err)
			}
			awaitSince(t, rewatched, tc.wantSince)
		})
	}
}

// A connection broken by another goroutine (a ping timeout) while frames
// are still buffered: the reader reads on, the watch events after the
// break reach no watch, and an answer after them must not move the
// resume point past them (the watch would lose them, with no resync).
func TestRewatchSinceAfterBreakMidBurst(t *testing.T) {
	rewatched := make(chan uint64, 1)
	addr := scriptedMember(t, func(ws *websocket.Conn, conn int32, req *wire.Request, resp *wire.Response) bool {
		if req.Op != wire.OpWatch {
			return ws.WriteJSON(&wire.Response{ID: req.ID, Error: &wire.Error{Code: wire.CodeBadRequest, Message: "not in this script"}}) == nil
		}
		resp.Watch = 1
		if conn > 1 {
			rewatched <- req.Since
			return ws.WriteJSON(resp) == nil
		}
		// The answer, two events and an answer past them, in one write, so
		// the client reads them into its buffer at once.
		var burst []byte
		for _, f := range []any{resp,
			&wire.Event{Event: wire.EventWatch, Watch: 1, Type: wire.WatchData, Path: "/w", Zxid: 6},
			&wire.Event{Event: wire.EventWatch, Watch: 1, Type: wire.WatchData, Path: "/w", Zxid: 7},
			&wire.Response{ID: 1 << 40, OK: true, Zxid: 20},
		} {
			b, _ := json.Marshal(f)
			burst = append(append(burst, 0x81, byte(len(b))), b...) // an unmasked text frame under 126 bytes
		}
		_, err := ws.NetConn().Write(burst)
		return err == nil
	})
	var c *Client
	var once sync.Once
	cfg := Config{Endpoints: []string{addr}, Logger: quiet, NoDiscovery: true,
		OnEvent: func(ev *wire.Response) {
			if ev.Zxid != 6 {
				return
			}
			// The reader is inside the burst: break the connection as a
			// ping timeout would, from outside.
			once.Do(func() {
				c.mu.Lock()
				cn := c.cur
				c.mu.Unlock()
				c.breakConn(cn, &Error{Code: CodeConnectionLost, Message: "ping timeout (test)", Index: -1})
			})
		}}
	var err error
	if c, err = Dial(ctx(t), cfg); err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx(t))
	if _, err := c.Watch(ctx(t), "/w"); err != nil {
		t.Fatal(err)
	}
	// The event at 6 was delivered, the one at 7 was not: since 5,
	// skipping the one at 6.
	awaitSince(t, rewatched, 5)
}

// An event read on a connection that has broken is not delivered and does
// not move the resume point: the next connection replays it, and delivered
// now it would come twice.
func TestNoDeliveryAfterBreak(t *testing.T) {
	w := &Watcher{path: "/w", ch: make(chan WatchEvent, 4), last: 5}
	live, dead := make(chan struct{}), make(chan struct{})
	close(dead)
	if w.deliverChange(live, EventData, "/w", 6, nil) || len(w.ch) != 1 {
		t.Fatal("an event on a live connection was not delivered")
	}
	if w.deliverChange(dead, EventData, "/w", 7, nil) || w.deliver(dead, &wire.Response{Event: wire.EventWatch, Watch: 1, Type: wire.WatchData, Path: "/w", Zxid: 8}) {
		t.Fatal("an event on a broken connection ended the watch")
	}
	if len(w.ch) != 1 {
		t.Fatalf("%d events delivered, want only the one at 6", len(w.ch))
	}
	if since := w.resumeSince(0); since != 5 {
		t.Fatalf("resume since %d, want 5 (skipping the one at 6)", since)
	}
}
