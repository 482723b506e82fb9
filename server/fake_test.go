package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/raftnode"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeRep is a replicator that applies every proposal at once, as a
// single-member cluster with an instant log would.
type fakeRep struct {
	sm *stateMachine

	mu       sync.Mutex
	index    uint64
	reads    int
	proposed int                   // Propose calls, failed ones too
	fail     error                 // returned by Propose when set
	down     bool                  // not ready, no leader
	hang     bool                  // proposals are accepted but never applied; reads never confirm
	leader   uint64                // the leader Status reports; 0 means this member (1)
	term     uint64                // the term Status reports; 0 means 1
	onRead   func()                // when set, runs inside each LinearizableRead, without mu
	members  []raftnode.MemberInfo // what Members returns, when set
}

var _ replicator = (*fakeRep)(nil)

func (f *fakeRep) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (f *fakeRep) Propose(_ context.Context, cmd []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.proposed++
	if f.fail != nil {
		return f.fail
	}
	if f.hang {
		return nil // accepted, never committed
	}
	f.index++
	return f.sm.Apply([]raftnode.Entry{{Index: f.index, Term: 1, Data: cmd}})
}

func (f *fakeRep) ProposeAsync(ctx context.Context, cmd []byte, done func(error)) error {
	if err := f.Propose(ctx, cmd); err != nil {
		done(err)
	}
	return nil
}

func (f *fakeRep) ProposeAsLeader(ctx context.Context, term uint64, cmd []byte, done func(error)) error {
	if st := f.Status(); !st.IsLeader || st.Term != term {
		done(raftnode.ErrNotLeaderInTerm)
		return nil
	}
	return f.ProposeAsync(ctx, cmd, done)
}

func (f *fakeRep) proposals() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.proposed
}

func (f *fakeRep) LinearizableRead(ctx context.Context) error {
	f.mu.Lock()
	f.reads++
	hang, down, onRead := f.hang, f.down, f.onRead
	f.mu.Unlock()
	if onRead != nil {
		onRead()
	}
	if !hang {
		return nil
	}
	<-ctx.Done()
	if down { // as raftnode says it
		return fmt.Errorf("%w: %w", raftnode.ErrNoLeader, ctx.Err())
	}
	return ctx.Err()
}

func (f *fakeRep) Status() raftnode.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return raftnode.Status{ID: 1, Term: 1, Commit: f.index, Applied: f.index}
	}
	lead, term := f.leader, max(f.term, 1)
	if lead == 0 {
		lead = 1
	}
	return raftnode.Status{ID: 1, Leader: lead, Term: term, Commit: f.index, Applied: f.index, IsLeader: lead == 1}
}

func (f *fakeRep) Members() []raftnode.MemberInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.members != nil {
		return f.members
	}
	return []raftnode.MemberInfo{{ID: 1, Name: "m1", PeerURL: "127.0.0.1:1", Leader: true, Alive: true}}
}

func (f *fakeRep) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.down
}
func (f *fakeRep) TransferLeadership(context.Context) error { return nil }

// testServer is a server over a fakeRep, serving on 127.0.0.1:0.
type testServer struct {
	srv  *server
	rep  *fakeRep
	addr string
}

func startFake(t testing.TB, tweak func(*Config)) *testServer {
	t.Helper()
	ts, stop := startFakeStoppable(t, tweak)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serveAll: %v", err)
		}
	})
	return ts
}

// startFakeStoppable starts a server and returns the function that stops it
// and returns what serveAll returned.
func startFakeStoppable(t testing.TB, tweak func(*Config)) (*testServer, func() error) {
	t.Helper()
	return startFakeRep(t, tweak, nil)
}

// startFakeRep is startFakeStoppable with prep applied to the fake
// replicator before the server starts.
func startFakeRep(t testing.TB, tweak func(*Config), prep func(*fakeRep)) (*testServer, func() error) {
	t.Helper()
	cfg := Config{Name: "m1", DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler),
		AdvertisePeerAddr: "127.0.0.1:1", TickInterval: 10 * time.Millisecond}
	if tweak != nil {
		tweak(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.withDefaults()
	cfg.AdvertiseClientAddr = ln.Addr().String()
	waits := newWaitRegistry()
	sm := newStateMachine(cfg.Logger, waits)
	// The fake is a fully upgraded cluster; TestMixedVersion* covers the
	// way up.
	sm.clusterVersion.Store(currentClusterVersion)
	rep := &fakeRep{sm: sm}
	if prep != nil {
		prep(rep)
	}
	s, err := newServer(cfg, 1, rep, sm, waits)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serveAll(ctx, ln) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &testServer{srv: s, rep: rep, addr: ln.Addr().String()}, stop
}

// wsClient speaks raw JSON to a server, as an outside client would.
type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func dial(t *testing.T, addr string) *wsClient {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+addr+wire.EndpointPath, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	if got := ws.Subprotocol(); got != wire.Subprotocol {
		t.Fatalf("subprotocol %q, want %q", got, wire.Subprotocol)
	}
	t.Cleanup(func() { ws.Close() })
	return &wsClient{t: t, ws: ws}
}

// hello dials and opens a new session.
func helloed(t *testing.T, addr string) *wsClient {
	c := dial(t, addr)
	if r := c.call(`{"id":1,"op":"hello","timeout_ms":10000}`); !r.OK {
		t.Fatalf("hello: %+v", r.Error)
	}
	return c
}

func (c *wsClient) send(raw string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(raw)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// recvRaw reads one frame.
func (c *wsClient) recvRaw() []byte {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return b
}

func (c *wsClient) recv() wire.Response {
	c.t.Helper()
	b := c.recvRaw()
	var r wire.Response
	if err := json.Unmarshal(b, &r); err != nil {
		c.t.Fatalf("decode %s: %v", b, err)
	}
	return r
}

func (c *wsClient) call(raw string) wire.Response {
	c.t.Helper()
	c.send(raw)
	return c.recv()
}

// mustAnswer checks that the connection still answers (a local read, which
// needs no leader; a ping answers UNAVAILABLE while this member cannot renew
// sessions).
func (c *wsClient) mustAnswer() {
	c.t.Helper()
	if r := c.call(`{"id":999999,"op":"exists","path":"/","local":true}`); !r.OK || r.ID != 999999 {
		c.t.Fatalf("request after error: %+v", r)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String()
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if code, _ := httpGet(t, "http://"+addr+"/readyz"); code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never answered 200")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
