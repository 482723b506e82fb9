package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/tree"
)

// A spliced watch event frame is byte for byte what encoding the whole
// event gives, and the tail cache never hands one change's tail to another.
func TestWatchEventSplice(t *testing.T) {
	events := []tree.Event{
		{Type: tree.EventCreated, Path: "/a", Zxid: 1, Data: []byte("v")},
		{Type: tree.EventDataChanged, Path: "/a", Zxid: 1, Data: []byte("w")}, // same zxid and path, other data
		{Type: tree.EventDataChanged, Path: "/a", Zxid: 1, Data: []byte{}},
		{Type: tree.EventDeleted, Path: "/a/<b>&\"c\"\u00e9\u2028", Zxid: 1<<64 - 1},
		{Type: tree.EventChildrenChanged, Path: "/", Zxid: 7},
		{Type: tree.EventDataChanged, Path: "/bin", Zxid: 8, Data: []byte{0, 0xff, '"', '\\'}},
	}
	var tc tailCache
	for _, ev := range events {
		for _, id := range []uint64{1, 42, 1<<64 - 1} {
			want, err := json.Marshal(&wire.Event{Event: wire.EventWatch, Watch: id, Type: wireEventType(ev.Type),
				Path: ev.Path, Zxid: ev.Zxid, Data: ev.Data})
			if err != nil {
				t.Fatal(err)
			}
			var f frameBuf
			f.addWatchEvent(id, tc.tail(ev))
			got := (*f.b)[len(appendFrameHeader(nil, len(want))):]
			if !bytes.Equal(got, want) {
				t.Errorf("event %+v id %d:\n got %s\nwant %s", ev, id, got, want)
			}
		}
	}
}

// Frames gathered in a frameBuf and written in one write are read by a
// standard WebSocket client as separate text messages, at every header
// size (7-bit, 16-bit and 64-bit lengths).
func TestGatheredFramesReadByClient(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 70000}
	errc := make(chan error, 1)
	up := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			errc <- err
			return
		}
		defer ws.Close()
		var f frameBuf
		for _, n := range sizes {
			f.add(bytes.Repeat([]byte{byte('a' + n%26)}, n))
		}
		f.addWatchEvent(3, []byte(`,"type":"data"}`))
		errc <- f.writeTo(ws.NetConn(), 5*time.Second)
		_, _, _ = ws.ReadMessage() // until the client hangs up
	}))
	defer hs.Close()
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, n := range sizes {
		mt, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("frame of %d bytes: %v", n, err)
		}
		if mt != websocket.TextMessage || len(b) != n || (n > 0 && b[n-1] != byte('a'+n%26)) {
			t.Fatalf("frame of %d bytes: type %d, %d bytes", n, mt, len(b))
		}
	}
	if _, b, err := ws.ReadMessage(); err != nil || string(b) != `{"event":"watch","watch":3,"type":"data"}` {
		t.Fatalf("watch frame %q, %v", b, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// numWriters counts the running connection writers.
func numWriters() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("server.(*conn).runWriter("))
}

// waitWriters polls until no connection writer runs.
func waitNoWriters(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for numWriters() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connection writers still run on idle connections", numWriters())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An idle connection holds no writer goroutine: one starts for a response
// or an event and ends when nothing is left, and nothing is lost between
// turns.
func TestIdleConnectionHasNoWriter(t *testing.T) {
	ts := startFake(t, nil)
	w := helloed(t, ts.addr)
	c := helloed(t, ts.addr)
	if r := c.call(`{"id":2,"op":"create","path":"/t"}`); !r.OK {
		t.Fatal(r.Error)
	}
	if r := w.call(`{"id":2,"op":"watch","path":"/t","recursive":true}`); !r.OK {
		t.Fatal(r.Error)
	}
	waitNoWriters(t)
	for i := range 50 {
		if r := c.call(fmt.Sprintf(`{"id":%d,"op":"create","path":"/t/n%d","data":"%s"}`, 10+i, i, b64("v", i))); !r.OK {
			t.Fatal(r.Error)
		}
		ev := w.recv()
		if ev.Event != wire.EventWatch || ev.Path != fmt.Sprintf("/t/n%d", i) || string(ev.Data) != fmt.Sprintf("v%d", i) {
			t.Fatalf("event %d: %+v", i, ev)
		}
		if i%10 == 0 {
			waitNoWriters(t) // the next event starts a writer afresh
		}
	}
	waitNoWriters(t)
	w.mustAnswer()
	c.mustAnswer()
}

// A full response queue stops the reader (backpressure) until the writer
// makes room; every request is still answered, in order.
func TestPendingQueueBound(t *testing.T) {
	ts := startFake(t, func(cfg *Config) {
		cfg.MaxPendingPerConn = 3
		cfg.RequestTimeout = 50 * time.Millisecond
	})
	c := helloed(t, ts.addr)
	ts.rep.mu.Lock()
	ts.rep.hang = true // linearizable reads wait until their deadline
	ts.rep.mu.Unlock()
	const n = 12
	for i := range n {
		c.send(fmt.Sprintf(`{"id":%d,"op":"exists","path":"/"}`, 100+i))
	}
	for i := range n {
		r := c.recv()
		if r.ID != uint64(100+i) || r.Error == nil || r.Error.Code != wire.CodeTimeout {
			t.Fatalf("answer %d: %+v, want id %d TIMEOUT", i, r, 100+i)
		}
	}
	if v := metricValue(t, ts, "arbor_connection_backpressure_total"); v < 1 {
		t.Errorf("backpressure counted %v times, want at least once", v)
	}
	ts.rep.mu.Lock()
	ts.rep.hang = false
	ts.rep.mu.Unlock()
	c.mustAnswer()
}

// Events pushed while the watching connection's writer starts and ends its
// turns on pipelined answers all arrive, with every answer: no wakeup is
// lost between turns (a lost one leaves recv without a frame).
func TestEventsWhileWriterTurns(t *testing.T) {
	ts := startFake(t, nil)
	w := helloed(t, ts.addr)
	c := helloed(t, ts.addr)
	if r := c.call(`{"id":2,"op":"create","path":"/t"}`); !r.OK {
		t.Fatal(r.Error)
	}
	if r := w.call(`{"id":2,"op":"watch","path":"/t","recursive":true}`); !r.OK {
		t.Fatal(r.Error)
	}
	const n = 300
	done := make(chan error, 1)
	go func() {
		for i := range n {
			b, _ := json.Marshal(map[string]any{"id": 10 + i, "op": "create", "path": fmt.Sprintf("/t/n%d", i)})
			if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range n {
		w.send(fmt.Sprintf(`{"id":%d,"op":"exists","path":"/t","local":true}`, 1000+i))
	}
	answers, events := 0, 0
	for answers < n || events < n {
		r := w.recv() // fails after 10s without a frame
		if r.Event == wire.EventWatch {
			events++
		} else {
			answers++
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for range n {
		c.recv()
	}
}

// push wakes the writer only after releasing the queue's lock: the writer
// takes that lock under its own (next), so a wake under it deadlocks.
func TestPushWakesOutsideQueueLock(t *testing.T) {
	q := newEventQueue(10, 1<<20)
	woken := 0
	q.wake = func() {
		woken++
		if !q.mu.TryLock() {
			t.Fatal("wake called with the event queue's lock held")
		}
		q.mu.Unlock()
	}
	q.push([]queuedEvent{watchEvent(1, 5, []byte(`}`))}, false)
	if woken != 1 {
		t.Fatalf("woken %d times, want 1", woken)
	}
	q.close()
	q.push([]queuedEvent{watchEvent(1, 6, []byte(`}`))}, false)
	if woken != 1 {
		t.Fatal("a closed queue woke the writer")
	}
}
