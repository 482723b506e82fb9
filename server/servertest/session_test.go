package servertest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/server"
	"github.com/arbor-db/arbor/server/servertest"
)

// session opens a raw connection and a session with the given timeout.
func session(t *testing.T, addr string, timeoutMs int64) (*rawClient, wire.Response) {
	t.Helper()
	c := dialRaw(t, addr)
	h := c.do(wire.Request{Op: wire.OpHello, TimeoutMs: timeoutMs})
	if !h.OK {
		t.Fatalf("hello: %+v", h.Error)
	}
	return c, h
}

// resume opens a raw connection to addr and resumes a session on it.
func resume(t *testing.T, addr string, h wire.Response, lastZxid uint64) (*rawClient, wire.Response) {
	t.Helper()
	c := dialRaw(t, addr)
	return c, c.do(wire.Request{Op: wire.OpHello, Session: h.Session, Secret: h.Secret, LastZxid: lastZxid})
}

// exists reports whether path exists, read linearizably through c.
func exists(t *testing.T, c *rawClient, path string) bool {
	t.Helper()
	r := c.do(wire.Request{Op: wire.OpExists, Path: path})
	if !r.OK {
		t.Fatalf("exists %s: %+v", path, r.Error)
	}
	return r.Stat.Stat != nil
}

// waitGone polls until path does not exist, within limit; it returns when.
func waitGone(t *testing.T, c *rawClient, path string, limit time.Duration) time.Time {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		if !exists(t, c, path) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists after %v", path, limit)
		}
	}
}

// expectEnd reads until the server closes c, and returns the events it sent
// first and the close error.
func expectEnd(t *testing.T, c *rawClient, within time.Duration) ([]wire.Response, *websocket.CloseError) {
	t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(within))
	var evs []wire.Response
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("connection ended without a close frame: %v", err)
			}
			return evs, ce
		}
		var r wire.Response
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("frame %s: %v", b, err)
		}
		evs = append(evs, r)
	}
}

// A session whose client vanishes loses its ephemerals at its timeout, not
// before; a client that keeps pinging keeps its own; a client still
// connected but silent gets the expired event, then the close.
func TestSessionExpiresWithItsClient(t *testing.T) {
	c := servertest.NewCluster(t, 3)
	const timeout = 2000
	gone, _ := session(t, c.Addr(1), timeout)
	silent, _ := session(t, c.Addr(2), timeout)
	alive, _ := session(t, c.Addr(0), timeout)
	for _, x := range []struct {
		c    *rawClient
		path string
	}{{gone, "/gone"}, {silent, "/silent"}, {alive, "/alive"}} {
		if r := x.c.do(wire.Request{Op: wire.OpCreate, Path: x.path, Ephemeral: true}); !r.OK {
			t.Fatalf("create %s: %+v", x.path, r.Error)
		}
	}
	last := time.Now()
	gone.ws.Close() // no close op: the process died

	// The one that keeps pinging.
	stop := make(chan struct{})
	pingDone := make(chan error, 1)
	go func() {
		t := time.NewTicker(timeout / 4 * time.Millisecond)
		defer t.Stop()
		for i := uint64(1000); ; i++ {
			select {
			case <-stop:
				pingDone <- nil
				return
			case <-t.C:
			}
			if err := alive.ws.WriteJSON(wire.Request{ID: i, Op: wire.OpPing}); err != nil {
				pingDone <- err
				return
			}
			var r wire.Response
			if err := alive.ws.ReadJSON(&r); err != nil || !r.OK {
				pingDone <- fmt.Errorf("ping: %v %+v", err, r.Error)
				return
			}
		}
	}()
	observer := connect(t, c.Addr(0))
	time.Sleep(timeout / 2 * time.Millisecond) // well inside the timeout
	if !exists(t, observer, "/gone") || !exists(t, observer, "/silent") {
		t.Fatal("an ephemeral went before its session's timeout")
	}
	at := waitGone(t, observer, "/gone", timeout*time.Millisecond+3*time.Second)
	if d := at.Sub(last); d < timeout*time.Millisecond {
		t.Fatalf("ephemeral gone %v after the last request, before the %dms timeout", d, timeout)
	}
	waitGone(t, observer, "/silent", 2*time.Second)
	evs, ce := expectEnd(t, silent, 5*time.Second)
	if len(evs) != 1 || evs[0].Event != wire.EventSession || evs[0].State != wire.SessionExpired {
		t.Errorf("silent client got %+v before the close, want one session expired event", evs)
	}
	if ce.Code != websocket.CloseNormalClosure || !strings.Contains(ce.Text, "expired") {
		t.Errorf("close %d %q, want a normal close saying the session expired", ce.Code, ce.Text)
	}
	close(stop)
	if err := <-pingDone; err != nil {
		t.Fatal(err)
	}
	if !exists(t, observer, "/alive") {
		t.Fatal("the pinging session lost its ephemeral")
	}
}

// Resume works on any member; the old connection is closed with a reason;
// a wrong secret and an expired session get their codes; a member waits
// for last_zxid before it answers.
func TestResumeAnywhere(t *testing.T) {
	c := servertest.NewCluster(t, 3)
	a, h := session(t, c.Addr(0), 10000)
	if r := a.do(wire.Request{Op: wire.OpCreate, Path: "/e", Ephemeral: true}); !r.OK {
		t.Fatal(r.Error)
	}
	b, r := resume(t, c.Addr(1), h, h.Zxid)
	if !r.OK || r.Session != h.Session || r.Server != c.Name(1) || r.TimeoutMs != 10000 {
		t.Fatalf("resume on %s: %+v %+v", c.Name(1), r, r.Error)
	}
	if _, ce := expectEnd(t, a, 5*time.Second); !strings.Contains(ce.Text, "resumed") {
		t.Errorf("old connection closed with %q, want a reason naming the resume", ce.Text)
	}
	if !exists(t, b, "/e") {
		t.Fatal("the ephemeral did not survive the resume")
	}
	wrong := h
	wrong.Secret = "not-the-secret"
	if _, r := resume(t, c.Addr(2), wrong, 0); r.Error == nil || r.Error.Code != wire.CodeAuthFailed {
		t.Errorf("wrong secret: %+v", r)
	}

	// last_zxid ahead of every member: the answer waits for it.
	w := connect(t, c.Addr(0))
	cur := w.do(wire.Request{Op: wire.OpSync, Path: "/"}).Zxid
	want := cur + 5
	got := make(chan wire.Response, 1)
	go func() {
		ws, resp, err := websocket.DefaultDialer.Dial("ws://"+c.Addr(2)+wire.EndpointPath, nil)
		if err != nil {
			got <- wire.Response{Error: &wire.Error{Message: err.Error()}}
			return
		}
		resp.Body.Close()
		defer ws.Close()
		_ = ws.WriteJSON(wire.Request{ID: 1, Op: wire.OpHello, Session: h.Session, Secret: h.Secret, LastZxid: want})
		var r wire.Response
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_ = ws.ReadJSON(&r)
		got <- r
	}()
	select {
	case r := <-got:
		t.Fatalf("resume with last_zxid %d answered before any write: %+v", want, r)
	case <-time.After(200 * time.Millisecond):
	}
	for i := range 6 {
		if r := w.do(wire.Request{Op: wire.OpCreate, Path: fmt.Sprintf("/w%d", i)}); !r.OK {
			t.Fatal(r.Error)
		}
	}
	if r := <-got; !r.OK || r.Zxid < want {
		t.Fatalf("resume with last_zxid %d: %+v %+v", want, r, r.Error)
	}

	// That resume moved the session away from b. Close it from a fresh
	// resume; resuming it is then SESSION_EXPIRED everywhere.
	d, r := resume(t, c.Addr(0), h, 0)
	if !r.OK {
		t.Fatal(r.Error)
	}
	if r := d.do(wire.Request{Op: wire.OpClose}); !r.OK {
		t.Fatal(r.Error)
	}
	for i := range c.Size() {
		if _, r := resume(t, c.Addr(i), h, 0); r.Error == nil || r.Error.Code != wire.CodeSessionExpired {
			t.Errorf("resume of a closed session on %s: %+v", c.Name(i), r)
		}
	}
}

// ping answers carry renewed_ago_ms once the leader confirmed a renewal,
// on the leader and on followers alike.
func TestPingSaysWhenTheLeaderRenewed(t *testing.T) {
	c := servertest.NewCluster(t, 3)
	for i := range c.Size() {
		s, _ := session(t, c.Addr(i), 3000)
		var r wire.Response
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			r = s.do(wire.Request{Op: wire.OpPing})
			if !r.OK {
				t.Fatalf("ping on %s: %+v", c.Name(i), r.Error)
			}
			if r.RenewedAgoMs != nil || time.Now().After(deadline) {
				break
			}
		}
		if r.RenewedAgoMs == nil {
			t.Fatalf("ping on %s never carried renewed_ago_ms", c.Name(i))
		}
		if ago := *r.RenewedAgoMs; ago < 0 || ago > 1000 {
			t.Errorf("renewed_ago_ms %d on %s, want a fresh confirmation", ago, c.Name(i))
		}
	}
}

// leaderIndex returns the index of the member that leads.
func leaderIndex(t *testing.T, c *servertest.Cluster, via int) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r := connect(t, c.Addr(via)).do(wire.Request{Op: wire.OpMembers})
		for _, m := range r.Members {
			if m.Role != wire.RoleLeader {
				continue
			}
			for i := range c.Size() {
				if c.Name(i) == m.Name {
					return i
				}
			}
		}
	}
	t.Fatal("no leader")
	return -1
}

// Sessions that keep pinging survive a crash of the leader: the new leader
// gives every session a full timeout. TTLs go on from the node's mtime.
func TestSessionsAndTTLSurviveLeaderCrash(t *testing.T) {
	c := servertest.NewCluster(t, 3, servertest.WithConfig(func(cfg *server.Config) {
		cfg.NoHandOver = true
		cfg.ReapInterval = 100 * time.Millisecond
	}))
	lead := leaderIndex(t, c, 0)
	var keepers []*rawClient
	for i := range c.Size() {
		if i == lead {
			continue
		}
		s, _ := session(t, c.Addr(i), 2000)
		if r := s.do(wire.Request{Op: wire.OpCreate, Path: fmt.Sprintf("/keep%d", i), Ephemeral: true}); !r.OK {
			t.Fatal(r.Error)
		}
		keepers = append(keepers, s)
	}
	other := (lead + 1) % c.Size()
	obs := connect(t, c.Addr(other))
	const ttl = 1500
	r := obs.do(wire.Request{Op: wire.OpCreate, Path: "/ttl", TTLMs: ttl})
	if !r.OK {
		t.Fatal(r.Error)
	}
	created := time.Now()
	c.Stop(lead) // NoHandOver: a crash as the others see it
	for until := time.Now().Add(3 * time.Second); time.Now().Before(until); time.Sleep(400 * time.Millisecond) {
		for _, k := range keepers {
			if p := k.do(wire.Request{Op: wire.OpPing}); !p.OK && p.Error.Code != wire.CodeUnavailable {
				t.Fatalf("ping: %+v", p.Error)
			}
		}
		if !exists(t, obs, "/ttl") && time.Since(created) < ttl*time.Millisecond {
			t.Fatalf("TTL node reaped %v after its create, before its %dms TTL", time.Since(created), ttl)
		}
	}
	for i := range c.Size() {
		if i != lead && !exists(t, obs, fmt.Sprintf("/keep%d", i)) {
			t.Fatalf("a pinging session lost its ephemeral across the leader crash")
		}
	}
	waitGone(t, obs, "/ttl", 5*time.Second)
}

// Containers go when their last child goes.
func TestContainerReaped(t *testing.T) {
	c := servertest.NewCluster(t, 1, servertest.WithConfig(func(cfg *server.Config) { cfg.ReapInterval = 50 * time.Millisecond }))
	s := connect(t, c.Addr(0))
	for _, req := range []wire.Request{
		{Op: wire.OpCreate, Path: "/c", Container: true},
		{Op: wire.OpCreate, Path: "/c/x"},
	} {
		if r := s.do(req); !r.OK {
			t.Fatal(r.Error)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if !exists(t, s, "/c") {
		t.Fatal("a container with a child was reaped")
	}
	if r := s.do(wire.Request{Op: wire.OpDelete, Path: "/c/x"}); !r.OK {
		t.Fatal(r.Error)
	}
	waitGone(t, s, "/c", 3*time.Second)
}

// A cluster with a member of the older version stays at cluster version 1:
// nobody proposes what that member cannot apply (it would stop), and what
// needs version 2 is refused with a clear error. Once the member is
// upgraded the cluster version rises and the features work.
func TestMixedVersionCluster(t *testing.T) {
	old := true
	c := servertest.NewCluster(t, 3, servertest.WithConfig(func(cfg *server.Config) {
		if cfg.Name == "m3" && old {
			cfg.Version = 1
		}
		cfg.ReapInterval = 100 * time.Millisecond
	}))
	s, _ := session(t, c.Addr(0), 2000)
	time.Sleep(500 * time.Millisecond) // several rounds of version reports
	for i := range c.Size() {
		if v := debugStateOf(t, c.Addr(i)).ClusterVersion; v != 1 {
			t.Fatalf("%s at cluster version %d with m3 on version 1", c.Name(i), v)
		}
	}
	r := s.do(wire.Request{Op: wire.OpCreate, Path: "/t", TTLMs: 1000})
	if r.Error == nil || r.Error.Code != wire.CodeBadRequest || !strings.Contains(r.Error.Message, "cluster version") {
		t.Fatalf("TTL create at cluster version 1: %+v", r)
	}
	r = s.do(wire.Request{Op: wire.OpLock, Path: "/l"})
	if r.Error == nil || r.Error.Code != wire.CodeBadRequest || !strings.Contains(r.Error.Message, "cluster version") {
		t.Fatalf("lock at cluster version 1: %+v", r)
	}
	// The old member still runs (it met nothing it cannot apply) and a
	// session on it works.
	o, _ := session(t, c.Addr(2), 2000)
	if r := o.do(wire.Request{Op: wire.OpCreate, Path: "/on-old", Ephemeral: true}); !r.OK {
		t.Fatal(r.Error)
	}

	old = false
	c.Restart(2)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if debugStateOf(t, c.Addr(0)).ClusterVersion == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cluster version not raised after the upgrade")
		}
	}
	if r := s.do(wire.Request{Op: wire.OpCreate, Path: "/t", TTLMs: 1000}); !r.OK {
		t.Fatalf("TTL create after the upgrade: %+v", r.Error)
	}
	if r := s.do(wire.Request{Op: wire.OpLock, Path: "/l"}); !r.OK {
		t.Fatalf("lock after the upgrade: %+v", r.Error)
	}
	for i := range c.Size() {
		for deadline := time.Now().Add(5 * time.Second); debugStateOf(t, c.Addr(i)).ClusterVersion != 3; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s not at cluster version 3", c.Name(i))
			}
		}
	}
}
