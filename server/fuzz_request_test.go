package server

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
)

// FuzzRequestFrame sends one arbitrary frame on a live connection: every
// answer must be a well-formed response, and the connection and the member
// must stay up (a ping right after is answered), unless the frame was a
// close.
func FuzzRequestFrame(f *testing.F) {
	for _, seed := range []string{
		`{"id":2,"op":"create","path":"/a","data":"aGk="}`,
		`{"id":2,"op":"get","path":"/a","local":true}`,
		`{"id":2,"op":"multi","ops":[{"op":"create","path":"/m"},{"op":"check","path":"/m","version":0}]}`,
		`{"id":2,"op":"set","path":"/a","data":"!!","version":"x"}`,
		`{"id":2,"op":"delete","path":"/a/../b","recursive":true}`,
		`{"id":2,"op":"create","path":"/arbor/x"}`,
		`{"id":2,"op":"children","path":"/","watch":true}`,
		`{"id":2,"op":"nope"}`,
		`{"id":"2"}`,
		`[1,2,3]`,
		`{"id":2,"op":"create","path":"/s-","sequential":true,"ephemeral":true}`,
		`not json`,
	} {
		f.Add([]byte(seed))
	}
	ts := startFake(f, nil)
	f.Fuzz(func(t *testing.T, frame []byte) {
		d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 5 * time.Second}
		ws, resp, err := d.Dial("ws://"+ts.addr+wire.EndpointPath, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		resp.Body.Close()
		defer ws.Close()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"op":"hello","timeout_ms":10000}`)); err != nil {
			t.Fatal(err)
		}
		if r := readResponse(t, ws); !r.OK {
			t.Fatalf("hello: %+v", r.Error)
		}
		if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
			t.Fatal(err)
		}
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"id":18446744073709551615,"op":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		isClose := strings.Contains(string(frame), "close")
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure && isClose {
					return
				}
				t.Fatalf("connection lost after frame %q: %v", frame, err)
			}
			var r wire.Response
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("undecodable answer %q to frame %q: %v", b, frame, err)
			}
			if !r.OK && (r.Error == nil || r.Error.Code == "" || r.Error.Message == "") {
				t.Fatalf("failure without a code and message: %s (frame %q)", b, frame)
			}
			if r.Error != nil && r.Error.Code == wire.CodeInternal {
				t.Fatalf("INTERNAL answer %s to frame %q", b, frame)
			}
			if r.ID == 18446744073709551615 {
				if !r.OK {
					t.Fatalf("ping after frame %q failed: %s", frame, b)
				}
				return
			}
		}
	})
}

func readResponse(t *testing.T, ws *websocket.Conn) wire.Response {
	t.Helper()
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var r wire.Response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return r
}
