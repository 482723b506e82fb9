package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/raftnode"
)

func TestHelloRequiredFirst(t *testing.T) {
	ts := startFake(t, nil)
	c := dial(t, ts.addr)
	r := c.call(`{"id":3,"op":"get","path":"/"}`)
	if r.ID != 3 || r.OK || r.Error == nil || r.Error.Code != wire.CodeNoSession {
		t.Fatalf("get before hello: %+v %+v", r, r.Error)
	}
	r = c.call(`{"id":4,"op":"hello","timeout_ms":1}`)
	if !r.OK || len(r.Session) != 16 || r.Secret == "" || r.Server != "m1" {
		t.Fatalf("hello: %+v", r)
	}
	if r.TimeoutMs != 2000 {
		t.Errorf("timeout_ms %d, want clamped to 2000", r.TimeoutMs)
	}
	if r := c.call(`{"id":5,"op":"get","path":"/"}`); !r.OK {
		t.Fatalf("get after hello: %+v", r.Error)
	}
	if r := c.call(`{"id":6,"op":"hello"}`); r.Error == nil || r.Error.Code != wire.CodeBadRequest {
		t.Fatalf("second hello: %+v", r)
	}
}

func TestBadInputs(t *testing.T) {
	ts := startFake(t, func(cfg *Config) { cfg.MaxDataBytes = 1024 })
	c := helloed(t, ts.addr)
	setup := []string{
		`{"id":1,"op":"create","path":"/a"}`,
		`{"id":2,"op":"create","path":"/a/b"}`,
		`{"id":3,"op":"create","path":"/e","ephemeral":true}`,
	}
	for _, s := range setup {
		if r := c.call(s); !r.OK {
			t.Fatalf("%s: %+v", s, r.Error)
		}
	}
	big := base64.StdEncoding.EncodeToString(make([]byte, 1025))
	cases := []struct {
		req     string
		id      uint64
		code    wire.Code
		message string // substring
	}{
		{`{"id":10,"op":"get",`, 0, wire.CodeBadRequest, "malformed JSON"},
		{`[1,2]`, 0, wire.CodeBadRequest, "JSON object"},
		{`{"id":11,"op":"get","path":7}`, 11, wire.CodeBadRequest, "field path"},
		{`{"id":12,"op":"set","path":"/a","version":"x"}`, 12, wire.CodeBadRequest, "field version"},
		{`{"id":13,"op":"create"}`, 13, wire.CodeBadRequest, "field path: missing"},
		{`{"id":14}`, 14, wire.CodeBadRequest, "field op: missing"},
		{`{"id":15,"op":"frobnicate"}`, 15, wire.CodeUnknownOp, `"frobnicate"`},
		{`{"id":16,"op":"get","path":"a/b"}`, 16, wire.CodeBadPath, `does not start with "/"`},
		{`{"id":17,"op":"create","path":"/a//b"}`, 17, wire.CodeBadPath, "empty component"},
		{`{"id":18,"op":"create","path":"/x","data":"` + big + `"}`, 18, wire.CodeTooLarge, "1025 bytes"},
		{`{"id":19,"op":"create","path":"/arbor/x"}`, 19, wire.CodeReadOnly, "/arbor/x"},
		{`{"id":20,"op":"get","path":"/missing"}`, 20, wire.CodeNoNode, "/missing does not exist"},
		{`{"id":21,"op":"create","path":"/a"}`, 21, wire.CodeNodeExists, "/a already exists"},
		{`{"id":22,"op":"delete","path":"/a"}`, 22, wire.CodeNotEmpty, "/a has children"},
		{`{"id":23,"op":"set","path":"/a","version":7}`, 23, wire.CodeBadVersion, "/a"},
		{`{"id":24,"op":"create","path":"/e/c"}`, 24, wire.CodeNoChildrenForEphemeral, "ephemeral"},
		{`{"id":25,"op":"watch"}`, 25, wire.CodeBadRequest, "field path: missing"},
		{`{"id":26,"op":"unwatch","watch":99}`, 26, wire.CodeBadRequest, "no watch 99"},
		{`{"id":27,"op":"get","path":"/a","watch":"yes"}`, 27, wire.CodeBadRequest, "field watch"},
		{`{"id":28,"op":"create","path":"/x","data":"%%%"}`, 28, wire.CodeBadRequest, "base64"},
		{`{"id":29,"op":"children","path":"/nope"}`, 29, wire.CodeNoNode, "/nope does not exist"},
		{`{"id":30,"op":"delete","path":"/arbor"}`, 30, wire.CodeReadOnly, "reserved"},
		{`{"id":31,"op":"check","path":"/a"}`, 31, wire.CodeBadRequest, "multi"},
		{`{"id":32,"op":"lock","path":"/arbor/l"}`, 32, wire.CodeReadOnly, "/arbor/l"},
	}
	for _, tc := range cases {
		r := c.call(tc.req)
		if r.OK || r.Error == nil || r.Error.Code != tc.code || r.ID != tc.id {
			t.Errorf("%s: got id %d ok %v error %+v, want id %d code %s", tc.req, r.ID, r.OK, r.Error, tc.id, tc.code)
		} else if !strings.Contains(r.Error.Message, tc.message) {
			t.Errorf("%s: message %q does not mention %q", tc.req, r.Error.Message, tc.message)
		}
		c.mustAnswer()
	}
	// A binary frame is refused too, and the connection lives on.
	if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte(`{"id":1,"op":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if r := c.recv(); r.Error == nil || r.Error.Code != wire.CodeBadRequest {
		t.Errorf("binary frame: %+v", r)
	}
	c.mustAnswer()
}

func TestOversizedFrameCloses1009(t *testing.T) {
	ts := startFake(t, func(cfg *Config) { cfg.MaxFrameBytes = 2048; cfg.MaxDataBytes = 1024 })
	c := helloed(t, ts.addr)
	c.send(`{"id":2,"op":"create","path":"/x","data":"` + strings.Repeat("A", 4096) + `"}`)
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := c.ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("read after oversized frame: %v, want close 1009", err)
	}
	// The member is still up for others.
	helloed(t, ts.addr).mustAnswer()
}

func TestPipelining(t *testing.T) {
	ts := startFake(t, nil)
	c := helloed(t, ts.addr)
	if r := c.call(`{"id":1,"op":"create","path":"/p"}`); !r.OK {
		t.Fatal(r.Error)
	}
	const n = 100 // 5 requests each: 500 in one burst
	var reqs []string
	for i := range n {
		id := uint64(100 + 5*i)
		reqs = append(reqs,
			fmt.Sprintf(`{"id":%d,"op":"create","path":"/p/n%03d","data":"%s"}`, id, i, b64("v", i)),
			fmt.Sprintf(`{"id":%d,"op":"get","path":"/p/n%03d"}`, id+1, i),
			fmt.Sprintf(`{"id":%d,"op":"set","path":"/p/n%03d","data":"%s"}`, id+2, i, b64("w", i)),
			fmt.Sprintf(`{"id":%d,"op":"get","path":"/p/n%03d","local":true}`, id+3, i),
			fmt.Sprintf(`{"id":%d,"op":"children","path":"/p"}`, id+4),
		)
	}
	for _, r := range reqs {
		c.send(r)
	}
	var lastZxid uint64
	for i := range n {
		id := uint64(100 + 5*i)
		rs := [5]wire.Response{}
		for k := range rs {
			rs[k] = c.recv()
			if rs[k].ID != id+uint64(k) || !rs[k].OK {
				t.Fatalf("response %d: id %d ok %v err %+v, want id %d", 5*i+k, rs[k].ID, rs[k].OK, rs[k].Error, id+uint64(k))
			}
			if rs[k].Zxid < lastZxid {
				t.Fatalf("zxid went back: %d after %d", rs[k].Zxid, lastZxid)
			}
			lastZxid = rs[k].Zxid
		}
		if want := fmt.Sprintf("/p/n%03d", i); rs[0].Path != want {
			t.Fatalf("create path %q, want %q", rs[0].Path, want)
		}
		if string(rs[1].Data) != fmt.Sprintf("v%d", i) || string(rs[3].Data) != fmt.Sprintf("w%d", i) {
			t.Fatalf("reads of /p/n%03d saw %q then %q", i, rs[1].Data, rs[3].Data)
		}
		if rs[3].Stat.Stat.Version != 1 || rs[2].Stat.Stat.Version != 1 {
			t.Fatalf("versions after set: %d %d", rs[2].Stat.Stat.Version, rs[3].Stat.Stat.Version)
		}
		if len(rs[4].Children) != i+1 {
			t.Fatalf("children after %d creates: %d", i+1, len(rs[4].Children))
		}
	}
	ts.rep.mu.Lock()
	reads := ts.rep.reads
	ts.rep.mu.Unlock()
	// The member's own renewal rounds (every 100ms) share the barrier too,
	// and may add a call or two of their own.
	if reads == 0 || reads > 2*n+5 {
		t.Errorf("%d LinearizableRead calls for %d linearizable reads; want batching", reads, 2*n)
	}
}

func b64(prefix string, i int) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s%d", prefix, i))
}

func TestMultiAtomicWithIndex(t *testing.T) {
	ts := startFake(t, nil)
	c := helloed(t, ts.addr)
	r := c.call(`{"id":2,"op":"multi","ops":[{"op":"create","path":"/m1"},{"op":"create","path":"/m2"},{"op":"set","path":"/nope","data":"eA=="}]}`)
	if r.OK || r.Error == nil || r.Error.Code != wire.CodeNoNode || r.Index == nil || *r.Index != 2 {
		t.Fatalf("failing multi: ok %v err %+v index %v", r.OK, r.Error, r.Index)
	}
	if r := c.call(`{"id":3,"op":"exists","path":"/m1"}`); !r.OK || r.Stat.Stat != nil {
		t.Fatalf("/m1 exists after a failed multi: %+v", r)
	}
	r = c.call(`{"id":4,"op":"multi","ops":[{"op":"create","path":"/m1","data":"eA=="},{"op":"check","path":"/m1","version":0},{"op":"set","path":"/m1","data":"eQ=="},{"op":"delete","path":"/m1"}]}`)
	if !r.OK || len(r.Results) != 4 {
		t.Fatalf("multi: %+v", r)
	}
	if r.Results[0].Path != "/m1" || r.Results[2].Stat.Stat == nil || r.Results[2].Stat.Stat.Version != 1 {
		t.Errorf("multi results: %+v", r.Results)
	}
	for _, sub := range r.Results {
		if sub.Stat.Valid && sub.Stat.Stat.Mzxid > r.Zxid {
			t.Errorf("sub-result zxid beyond the multi's: %+v", sub)
		}
	}
	r = c.call(`{"id":5,"op":"multi","ops":[{"op":"create","path":"/ok"},{"op":"get","path":"/ok"}]}`)
	if r.Error == nil || r.Error.Code != wire.CodeBadRequest || r.Index == nil || *r.Index != 1 {
		t.Fatalf("multi with a get: %+v", r)
	}
	c.mustAnswer()
}

func TestExistsNullStat(t *testing.T) {
	ts := startFake(t, nil)
	c := helloed(t, ts.addr)
	c.send(`{"id":2,"op":"exists","path":"/nope"}`)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(c.recvRaw(), &m); err != nil {
		t.Fatal(err)
	}
	if st, ok := m["stat"]; !ok || string(st) != "null" {
		t.Fatalf(`exists of a missing node: stat %q (present %v), want null`, st, ok)
	}
	if string(m["ok"]) != "true" {
		t.Fatalf("exists: %s", m)
	}
}

func TestSessionResumeAndClose(t *testing.T) {
	ts := startFake(t, nil)
	c := dial(t, ts.addr)
	h := c.call(`{"id":1,"op":"hello","timeout_ms":5000}`)
	if r := c.call(`{"id":2,"op":"create","path":"/eph","ephemeral":true}`); !r.OK || r.Stat.Stat.EphemeralOwner != h.Session {
		t.Fatalf("ephemeral create: %+v %+v", r, r.Error)
	}
	// Resume on a second connection: same session, same timeout; the
	// first connection is closed, naming why.
	c2 := dial(t, ts.addr)
	r := c2.call(fmt.Sprintf(`{"id":1,"op":"hello","session":%q,"secret":%q,"last_zxid":%d}`, h.Session, h.Secret, h.Zxid))
	if !r.OK || r.Session != h.Session || r.TimeoutMs != 5000 {
		t.Fatalf("resume: %+v %+v", r, r.Error)
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := c.ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure || !strings.Contains(ce.Text, "resumed") {
		t.Fatalf("old connection after resume elsewhere: %v, want a normal close saying the session was resumed", err)
	}
	if r := dial(t, ts.addr).call(fmt.Sprintf(`{"id":1,"op":"hello","session":%q,"secret":"wrong"}`, h.Session)); r.Error == nil || r.Error.Code != wire.CodeAuthFailed {
		t.Fatalf("wrong secret: %+v", r)
	}
	if r := dial(t, ts.addr).call(`{"id":1,"op":"hello","session":"00000000000000ff","secret":"x"}`); r.Error == nil || r.Error.Code != wire.CodeSessionExpired {
		t.Fatalf("unknown session: %+v", r)
	}
	if r := c2.call(`{"id":2,"op":"exists","path":"/eph"}`); !r.OK || r.Stat.Stat == nil {
		t.Fatalf("ephemeral lost by the resume: %+v", r)
	}
	// close: answered, then a normal close, and the ephemeral is gone.
	if r := c2.call(`{"id":3,"op":"close"}`); !r.OK {
		t.Fatalf("close: %+v", r.Error)
	}
	_ = c2.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = c2.ws.ReadMessage()
	if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("after close: %v, want a normal close", err)
	}
	c3 := helloed(t, ts.addr)
	if r := c3.call(`{"id":2,"op":"exists","path":"/eph"}`); !r.OK || r.Stat.Stat != nil {
		t.Fatalf("ephemeral survived close: %+v", r)
	}
	if r := dial(t, ts.addr).call(fmt.Sprintf(`{"id":1,"op":"hello","session":%q,"secret":%q}`, h.Session, h.Secret)); r.Error == nil || r.Error.Code != wire.CodeSessionExpired {
		t.Fatalf("resume of a closed session: %+v", r)
	}
}

func TestNoLeader(t *testing.T) {
	ts := startFake(t, nil)
	c := helloed(t, ts.addr)
	ts.rep.mu.Lock()
	ts.rep.fail, ts.rep.down = raftnode.ErrProposalDropped, true
	ts.rep.mu.Unlock()
	if r := c.call(`{"id":2,"op":"create","path":"/x"}`); r.Error == nil || r.Error.Code != wire.CodeUnavailable {
		t.Fatalf("write without a leader: %+v", r)
	}
	code, body := httpGet(t, "http://"+ts.addr+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no leader") {
		t.Fatalf("readyz without a leader: %d %q", code, body)
	}
	if code, _ := httpGet(t, "http://"+ts.addr+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
	// A member without a leader cannot renew sessions: once that has
	// lasted a third of the session's timeout its pings say so, so that
	// clients move to another member.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := c.call(`{"id":3,"op":"ping"}`)
		if r.Error != nil && r.Error.Code == wire.CodeUnavailable && strings.Contains(r.Error.Message, "no leader") {
			break
		}
		if !r.OK || time.Now().After(deadline) {
			t.Fatalf("ping without a leader: %+v %+v", r, r.Error)
		}
	}
	c.mustAnswer()
}

func TestShutdownClosesConnections(t *testing.T) {
	ts, stop := startFakeStoppable(t, nil)
	c := helloed(t, ts.addr)
	c.mustAnswer()
	if err := stop(); err != nil {
		t.Fatalf("serveAll: %v", err)
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ws.ReadMessage(); err == nil {
		t.Fatal("connection still open after the server stopped")
	}
	if n := ts.srv.conns.Load(); n != 0 {
		t.Fatalf("%d connections counted after stop", n)
	}
}

func TestReadyWaitsForMemberAttrs(t *testing.T) {
	// Raft is ready but refuses proposals, so the member cannot publish
	// its attributes yet.
	ts, _ := startFakeRep(t, nil, func(f *fakeRep) { f.fail = raftnode.ErrProposalDropped })
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		code, body := httpGet(t, "http://"+ts.addr+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "publishing member attributes") {
			t.Fatalf("readyz before the attributes are published: %d %q", code, body)
		}
		if ts.rep.proposals() > 2 {
			break // the publisher has tried and failed more than once
		}
		time.Sleep(5 * time.Millisecond)
	}
	ts.rep.mu.Lock()
	ts.rep.fail = nil
	ts.rep.mu.Unlock()
	waitReady(t, ts.addr)
	// The moment the member is ready, members knows its client URL.
	r := helloed(t, ts.addr).call(`{"id":2,"op":"members"}`)
	if !r.OK || len(r.Members) != 1 || r.Members[0].ClientURL != ts.addr {
		t.Fatalf("members right after ready: %+v", r)
	}
}
