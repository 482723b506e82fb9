package client

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
)

// resumeScript is one randomized run of TestWatchResumeAtRandomBreaks: the
// frames the member sends on the first connection (events, and answers
// whose zxid says the events up to it were all sent), where it ends that
// connection, and after how many events the client's side breaks it.
type resumeScript struct {
	frames []any    // *wire.Event or *wire.Response, in order
	events []uint64 // the zxids of the events, in order
	sent   int      // frames written before the member ends the connection; len(frames): it does not
	end    string   // how the member ends it: "1013" or "close"
	// lateAnswer: before its 1013, an answer at a zxid past events the
	// member never sent. Members do not (a connection whose watches are
	// dropped answers nothing past them), but a client must not rely on
	// an answer of a connection closed with 1013 all the same. Only when
	// the client does not break the connection itself: broken before it
	// read the close, no client could tell.
	lateAnswer bool
	breakAt    int // events the user has read when the client breaks it; -1: never
}

func newResumeScript(rng *rand.Rand) resumeScript {
	var s resumeScript
	z := uint64(5)
	for range 1 + rng.IntN(40) {
		z += 1 + uint64(rng.IntN(3))
		s.events = append(s.events, z)
	}
	for i, z := range s.events {
		s.frames = append(s.frames, &wire.Event{Event: wire.EventWatch, Watch: 1, Type: wire.WatchData, Path: "/w", Zxid: z})
		if rng.IntN(3) == 0 {
			// An answer to a request that gave up: complete up to its
			// zxid, which lies at or past this event and before the next.
			az := z
			if i+1 < len(s.events) {
				az += uint64(rng.IntN(int(s.events[i+1] - z)))
			}
			s.frames = append(s.frames, &wire.Response{ID: 1<<40 + uint64(len(s.frames)), OK: true, Zxid: az})
		}
	}
	s.sent, s.breakAt = len(s.frames), -1
	switch rng.IntN(3) {
	case 0:
		s.sent, s.end = rng.IntN(len(s.frames)+1), "1013"
	case 1:
		s.sent, s.end = rng.IntN(len(s.frames)+1), "close"
	}
	if s.end == "" || rng.IntN(2) == 0 {
		s.breakAt = rng.IntN(len(s.events) + 1)
	}
	s.lateAnswer = s.end == "1013" && s.breakAt < 0 && rng.IntN(2) == 0
	return s
}

// TestWatchResumeAtRandomBreaks: whatever point a connection breaks at (the
// member ending it with 1013 or by closing it, the client's side breaking
// it as a ping timeout would, mid-burst or between bursts), the watch sees
// every event exactly once across the resume: the since it registers again
// with is neither past an event it never delivered nor before one it did.
func TestWatchResumeAtRandomBreaks(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x5e771e))
	for i := range 150 {
		s := newResumeScript(rng)
		t.Run(fmt.Sprint(i), func(t *testing.T) { runResumeScript(t, s) })
		if t.Failed() {
			t.Fatalf("script: %d events, %d frames, member sends %d then ends with %q (late answer %t), client breaks after %d read", len(s.events), len(s.frames), s.sent, s.end, s.lateAnswer, s.breakAt)
		}
	}
}

func runResumeScript(t *testing.T, s resumeScript) {
	addr := scriptedMember(t, func(ws *websocket.Conn, conn int32, req *wire.Request, resp *wire.Response) bool {
		if req.Op != wire.OpWatch {
			return ws.WriteJSON(&wire.Response{ID: req.ID, Error: &wire.Error{Code: wire.CodeBadRequest, Message: "not in this script"}}) == nil
		}
		resp.Watch = 1
		if conn > 1 {
			// A member with the whole history: the answer, then every
			// event past since.
			if ws.WriteJSON(resp) != nil {
				return false
			}
			for _, f := range s.frames {
				if ev, ok := f.(*wire.Event); ok && ev.Zxid > req.Since && ws.WriteJSON(ev) != nil {
					return false
				}
			}
			return true
		}
		// The answer and the frames in a few writes of several frames
		// each, so that the client reads some of them from its buffer.
		frames := append([]any{resp}, s.frames[:s.sent]...)
		for len(frames) > 0 {
			k := min(len(frames), 1+len(frames)/3)
			var b []byte
			for _, f := range frames[:k] {
				j, _ := json.Marshal(f)
				b = append(append(b, 0x81, byte(len(j))), j...) // an unmasked text frame under 126 bytes
			}
			if _, err := ws.NetConn().Write(b); err != nil {
				return false
			}
			frames = frames[k:]
		}
		switch s.end {
		case "1013":
			if s.lateAnswer {
				_ = ws.WriteJSON(&wire.Response{ID: 1 << 41, OK: true, Zxid: s.events[len(s.events)-1] + 10})
			}
			msg := websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "this member installed a snapshot; register watches again with since")
			_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			return false
		case "close":
			return false
		}
		return true
	})
	c, w := dialWatch(t, Config{Endpoints: []string{addr}, Logger: quiet, NoDiscovery: true, ReconnectBackoff: time.Millisecond})
	var once sync.Once
	breakConn := func() {
		once.Do(func() {
			c.mu.Lock()
			cn := c.cur
			c.mu.Unlock()
			if cn != nil {
				c.breakConn(cn, &Error{Code: CodeConnectionLost, Message: "ping timeout (test)", Index: -1})
			}
		})
	}
	if s.breakAt == 0 {
		breakConn()
	}
	timeout := time.After(10 * time.Second)
	for k := 0; k < len(s.events); k++ {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatalf("the watch ended after %d of %d events: %v", k, len(s.events), w.Err())
			}
			if ev.Zxid != s.events[k] {
				t.Fatalf("event %d of the watch at zxid %d, want %d (events %v)", k, ev.Zxid, s.events[k], s.events)
			}
		case <-timeout:
			t.Fatalf("%d of %d events within 10s (events %v)", k, len(s.events), s.events)
		}
		if k+1 == s.breakAt {
			breakConn()
		}
	}
	select {
	case ev := <-w.Events():
		t.Fatalf("an event at zxid %d after the last one (events %v)", ev.Zxid, s.events)
	case <-time.After(20 * time.Millisecond):
	}
}
