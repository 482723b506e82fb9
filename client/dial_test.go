package client

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
)

// deadEndpoint returns a loopback address nothing listens on.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// silentEndpoint accepts connections and never answers.
func silentEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// noLeaderEndpoint is a member that answers every hello as a member
// without a quorum does.
func noLeaderEndpoint(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		var req wire.Request
		if err := ws.ReadJSON(&req); err != nil {
			return
		}
		_ = ws.WriteJSON(&wire.Response{ID: req.ID, Error: &wire.Error{
			Code: wire.CodeUnavailable, Message: "no leader: the cluster has no quorum right now"}})
		_, _, _ = ws.ReadMessage() // until the client hangs up
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Dial's UNAVAILABLE error says, per endpoint, what stood in the way.
func TestDialNamesTheCause(t *testing.T) {
	dead, dead2 := deadEndpoint(t), deadEndpoint(t)
	silent, noLeader := silentEndpoint(t), noLeaderEndpoint(t)
	notArbor := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notArbor.Close)
	other := strings.TrimPrefix(notArbor.URL, "http://")
	cases := []struct {
		endpoints []string
		want      string
	}{
		{[]string{dead}, dead + ": connection refused"},
		{[]string{silent}, silent + ": timed out"},
		{[]string{noLeader}, noLeader + ": no leader: the cluster has no quorum right now"},
		{[]string{other}, other + ": no arbor WebSocket endpoint there"},
		{[]string{dead, noLeader, dead2}, dead + "," + dead2 + ": connection refused; " + noLeader + ": no leader"},
	}
	for _, tc := range cases {
		_, err := Dial(ctx(t), Config{Endpoints: tc.endpoints, Logger: quiet, DialTimeout: 300 * time.Millisecond, InOrder: true})
		var e *Error
		if !errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || !strings.HasPrefix(e.Message, tc.want) {
			t.Errorf("Dial %v: %v; want UNAVAILABLE: %s", tc.endpoints, err, tc.want)
		}
	}
}

// An endpoint that is not HOST:PORT is a BAD_REQUEST naming it, before
// anything is dialled.
func TestDialRejectsMalformedEndpoints(t *testing.T) {
	good := deadEndpoint(t)
	cases := []struct{ endpoint, want string }{
		{"127.0.0.1", `bad endpoint "127.0.0.1": no port`},
		{"http://127.0.0.1:7400", `bad endpoint "http://127.0.0.1:7400": want HOST:PORT without a scheme (http://): 127.0.0.1:7400`},
		{"ws://127.0.0.1:7400/v1", `without a scheme (ws://): 127.0.0.1:7400`},
		{"127.0.0.1:7400/v1", `port "7400/v1" is not a port number`},
		{"127.0.0.1:0", `port "0" is not a port number`},
		{"127.0.0.1:http", `port "http" is not a port number`},
		{"::1", `want HOST:PORT`},
	}
	for _, tc := range cases {
		_, err := Dial(ctx(t), Config{Endpoints: []string{good, tc.endpoint}, Logger: quiet})
		var e *Error
		if !errors.Is(err, ErrBadRequest) || !errors.Is(err, ErrBadEndpoint) || !errors.As(err, &e) || !strings.Contains(e.Message, tc.want) {
			t.Errorf("Dial %q: %v; want BAD_REQUEST containing %q", tc.endpoint, err, tc.want)
		}
	}
}
