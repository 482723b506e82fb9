package servertest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/server/servertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type rawClient struct {
	t  *testing.T
	ws *websocket.Conn
	id uint64
}

func connect(t *testing.T, addr string) *rawClient {
	t.Helper()
	c := dialRaw(t, addr)
	if r := c.do(wire.Request{Op: wire.OpHello, TimeoutMs: 10000}); !r.OK {
		t.Fatalf("hello: %+v", r.Error)
	}
	return c
}

// dialRaw opens a WebSocket to addr, closed at the end of the test.
func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+wire.EndpointPath, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return &rawClient{t: t, ws: ws}
}

func (c *rawClient) do(req wire.Request) wire.Response {
	c.t.Helper()
	c.id++
	req.ID = c.id
	if err := c.ws.WriteJSON(req); err != nil {
		c.t.Fatalf("send: %v", err)
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	var r wire.Response
	if err := c.ws.ReadJSON(&r); err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	if r.ID != req.ID {
		c.t.Fatalf("response id %d, want %d", r.ID, req.ID)
	}
	return r
}

func TestWriteOnOneMemberReadLinearizablyOnAnother(t *testing.T) {
	c := servertest.NewCluster(t, 3)
	a, b := connect(t, c.Addr(0)), connect(t, c.Addr(1))
	for i := range 20 {
		path := fmt.Sprintf("/k%d", i)
		w := a.do(wire.Request{Op: wire.OpCreate, Path: path, Data: []byte(path)})
		if !w.OK {
			t.Fatalf("create %s on %s: %+v", path, c.Name(0), w.Error)
		}
		r := b.do(wire.Request{Op: wire.OpGet, Path: path})
		if !r.OK || string(r.Data) != path {
			t.Fatalf("linearizable get %s on %s right after the write: %+v %+v", path, c.Name(1), r, r.Error)
		}
		if r.Zxid < w.Zxid {
			t.Fatalf("read zxid %d below the write's %d", r.Zxid, w.Zxid)
		}
	}
	m := b.do(wire.Request{Op: wire.OpMembers})
	if len(m.Members) != 3 {
		t.Fatalf("members: %+v", m)
	}
	leaders := 0
	for _, mem := range m.Members {
		if mem.Role == wire.RoleLeader {
			leaders++
		}
	}
	if leaders != 1 {
		raw, _ := json.Marshal(m.Members)
		t.Errorf("want exactly one leader: %s", raw)
	}
}

func TestRestartKeepsData(t *testing.T) {
	c := servertest.NewCluster(t, 3)
	a := connect(t, c.Addr(0))
	if r := a.do(wire.Request{Op: wire.OpCreate, Path: "/kept", Data: []byte("v")}); !r.OK {
		t.Fatal(r.Error)
	}
	a.ws.Close()
	c.Restart(0)
	for i := range c.Size() {
		r := connect(t, c.Addr(i)).do(wire.Request{Op: wire.OpGet, Path: "/kept"})
		if !r.OK || string(r.Data) != "v" {
			t.Fatalf("after restart, member %s reads %+v %+v", c.Name(i), r, r.Error)
		}
	}
}

// Right after /readyz answers 200, members knows the member's own client URL.
func TestReadyMemberKnowsItsOwnClientURL(t *testing.T) {
	c := servertest.NewCluster(t, 3)
	for i := range c.Size() {
		m := connect(t, c.Addr(i)).do(wire.Request{Op: wire.OpMembers})
		found := false
		for _, mem := range m.Members {
			if mem.Name == c.Name(i) {
				found = true
				if mem.ClientURL != c.Addr(i) {
					t.Errorf("%s reports its own client_url %q, want %q", c.Name(i), mem.ClientURL, c.Addr(i))
				}
			}
		}
		if !found {
			t.Errorf("%s does not list itself: %+v", c.Name(i), m.Members)
		}
	}
	// A restarted member is ready only once its record is applied again.
	c.Restart(1)
	m := connect(t, c.Addr(1)).do(wire.Request{Op: wire.OpMembers})
	for _, mem := range m.Members {
		if mem.Name == c.Name(1) && mem.ClientURL != c.Addr(1) {
			t.Errorf("after restart %s reports client_url %q", c.Name(1), mem.ClientURL)
		}
	}
}

type debugState struct {
	Member         string `json:"member"`
	Applied        uint64 `json:"applied"`
	StateSHA256    string `json:"state_sha256"`
	Nodes          int    `json:"nodes"`
	Sessions       int    `json:"sessions"`
	ClusterVersion uint64 `json:"cluster_version"`
}

func debugStateOf(t *testing.T, addr string) debugState {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/debug/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st debugState
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/debug/state on %s: %s", addr, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// Members that applied the same log report the same state hash.
func TestMembersAgreeOnStateHash(t *testing.T) {
	c := servertest.NewCluster(t, 3)
	a, b := connect(t, c.Addr(0)), connect(t, c.Addr(2))
	for i := range 30 {
		cl := a
		if i%2 == 1 {
			cl = b
		}
		req := wire.Request{Op: wire.OpCreate, Path: fmt.Sprintf("/h%d", i), Data: []byte{byte(i)}, Sequential: i%3 == 0}
		if i%5 == 0 {
			req.Ephemeral = true
		}
		if r := cl.do(req); !r.OK {
			t.Fatalf("create: %+v", r.Error)
		}
	}
	if r := a.do(wire.Request{Op: wire.OpMulti, Ops: []wire.Request{
		{Op: wire.OpSet, Path: "/h1", Data: []byte("x")},
		{Op: wire.OpDelete, Path: "/h2"},
	}}); !r.OK {
		t.Fatalf("multi: %+v", r.Error)
	}
	// Writes have stopped: poll until every member has applied the same
	// index, then compare.
	deadline := time.Now().Add(20 * time.Second)
	for {
		sts := make([]debugState, c.Size())
		for i := range sts {
			sts[i] = debugStateOf(t, c.Addr(i))
			if sts[i].Member != c.Name(i) {
				t.Fatalf("member %q on %s's port", sts[i].Member, c.Name(i))
			}
		}
		same := true
		for _, st := range sts[1:] {
			same = same && st.Applied == sts[0].Applied
		}
		if same {
			for _, st := range sts[1:] {
				if st != (debugState{Member: st.Member, Applied: sts[0].Applied, StateSHA256: sts[0].StateSHA256,
					Nodes: sts[0].Nodes, Sessions: sts[0].Sessions, ClusterVersion: sts[0].ClusterVersion}) {
					t.Fatalf("diverged at applied %d: %+v vs %+v", st.Applied, sts[0], st)
				}
			}
			if sts[0].Sessions != 2 || len(sts[0].StateSHA256) != 64 {
				t.Fatalf("state: %+v", sts[0])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("members never reached the same applied index: %+v", sts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
