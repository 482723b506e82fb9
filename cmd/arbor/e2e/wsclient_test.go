package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
)

// rawConn speaks the wire protocol directly, one request at a time, as a
// test outside the project would.
type rawConn struct {
	mu   sync.Mutex
	ws   *websocket.Conn
	next uint64
}

func req(op string) wire.Request { return wire.Request{Op: op} }

func dial(ctx context.Context, addr string) (*rawConn, error) {
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 2 * time.Second}
	ws, _, err := d.DialContext(ctx, "ws://"+addr+wire.EndpointPath, nil)
	if err != nil {
		return nil, err
	}
	c := &rawConn{ws: ws}
	h := req("hello")
	h.TimeoutMs = 10000
	if _, err := c.call(ctx, h); err != nil {
		ws.Close()
		return nil, fmt.Errorf("hello: %w", err)
	}
	return c, nil
}

func (c *rawConn) close() { c.ws.Close() }

// call sends r and waits for its response; a failed response is an error of
// type *wire.Error.
func (c *rawConn) call(ctx context.Context, r wire.Request) (wire.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	r.ID = c.next
	if dl, ok := ctx.Deadline(); ok {
		c.ws.SetWriteDeadline(dl)
		c.ws.SetReadDeadline(dl)
	} else {
		c.ws.SetWriteDeadline(time.Time{})
		c.ws.SetReadDeadline(time.Time{})
	}
	if err := c.ws.WriteJSON(r); err != nil {
		return wire.Response{}, err
	}
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return wire.Response{}, err
		}
		var resp wire.Response
		if err := json.Unmarshal(b, &resp); err != nil {
			return wire.Response{}, fmt.Errorf("decoding %s: %w", b, err)
		}
		if resp.Event != "" {
			continue
		}
		if resp.ID != r.ID {
			return wire.Response{}, fmt.Errorf("response id %d, want %d", resp.ID, r.ID)
		}
		if !resp.OK {
			if resp.Error == nil {
				return resp, fmt.Errorf("ok=false without error: %s", b)
			}
			return resp, resp.Error
		}
		return resp, nil
	}
}

func (c *rawConn) create(ctx context.Context, path string, data []byte) (wire.Response, error) {
	r := req("create")
	r.Path, r.Data = path, data
	return c.call(ctx, r)
}

func (c *rawConn) get(ctx context.Context, path string, local bool) (wire.Response, error) {
	r := req("get")
	r.Path, r.Local = path, local
	return c.call(ctx, r)
}
