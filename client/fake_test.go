package client

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
)

// fakeServer speaks enough of the protocol for the client's unit tests: an
// in-memory tree with versions, sequential and ephemeral nodes, and hooks to
// misbehave. Paths under /fail/CODE answer that error code.
type fakeServer struct {
	logf func(format string, args ...any)
	srv  *httptest.Server

	// swapPairs answers each two consecutive requests in reverse order, to
	// prove the client matches by id rather than by order.
	swapPairs bool
	// dropPath closes the connection, unanswered, on a request for it.
	dropPath string
	// hangPath is never answered.
	hangPath string

	mu       sync.Mutex
	nodes    map[string]*fakeNode
	zxid     uint64
	sessions int
	conns    map[*websocket.Conn]bool
	ops      []string // every op received, in order
	wg       sync.WaitGroup
}

type fakeNode struct {
	data  []byte
	stat  wire.Stat
	owner string
}

func newFakeServer(t *testing.T, configure ...func(*fakeServer)) *fakeServer {
	t.Helper()
	f := startFake(t.Logf, configure...)
	t.Cleanup(f.shutdown)
	return f
}

// startFake starts a fake server; the caller calls shutdown.
func startFake(logf func(string, ...any), configure ...func(*fakeServer)) *fakeServer {
	f := &fakeServer{
		logf:  logf,
		nodes: map[string]*fakeNode{"/": {}},
		conns: make(map[*websocket.Conn]bool),
	}
	for _, c := range configure {
		c(f)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func (f *fakeServer) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeServer) shutdown() {
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.srv.Close()
	f.wg.Wait()
}

// push sends an event to every connection.
func (f *fakeServer) push(ev wire.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		if err := c.WriteJSON(&ev); err != nil {
			f.logf("fake: push: %v", err)
		}
	}
}

func (f *fakeServer) setSwapPairs(on bool) {
	f.mu.Lock()
	f.swapPairs = on
	f.mu.Unlock()
}

func (f *fakeServer) seenOps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops...)
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != wire.EndpointPath {
		http.NotFound(w, r)
		return
	}
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.conns[conn] = true
	f.wg.Add(1)
	f.mu.Unlock()
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		delete(f.conns, conn)
		f.mu.Unlock()
		conn.Close()
	}()

	session := ""
	var held *wire.Response
	for {
		var req wire.Request
		if err := conn.ReadJSON(&req); err != nil {
			return
		}
		if req.Path == f.dropPath && f.dropPath != "" {
			return
		}
		if req.Path == f.hangPath && f.hangPath != "" {
			continue
		}
		f.mu.Lock()
		f.ops = append(f.ops, req.Op)
		resp := f.apply(&session, &req)
		var out []*wire.Response
		switch {
		case !f.swapPairs || req.Op == wire.OpHello || req.Op == wire.OpClose:
			out = []*wire.Response{resp}
		case held == nil:
			held = resp
		default:
			out = []*wire.Response{resp, held}
			held = nil
		}
		for _, r := range out {
			if err := conn.WriteJSON(r); err != nil {
				f.mu.Unlock()
				return
			}
		}
		f.mu.Unlock()
		if req.Op == wire.OpClose {
			return
		}
	}
}

func fail(id uint64, code wire.Code, format string, args ...any) *wire.Response {
	return &wire.Response{ID: id, Error: &wire.Error{Code: code, Message: fmt.Sprintf(format, args...)}}
}

func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/"
	}
	return p[:i]
}

// apply runs one request with f.mu held.
func (f *fakeServer) apply(session *string, req *wire.Request) *wire.Response {
	if req.Op != wire.OpHello && *session == "" {
		return fail(req.ID, wire.CodeNoSession, "say hello first")
	}
	if code, ok := strings.CutPrefix(req.Path, "/fail/"); ok {
		return fail(req.ID, wire.Code(code), "asked to fail")
	}
	switch req.Op {
	case wire.OpHello:
		f.sessions++
		*session = wire.FormatSession(uint64(f.sessions))
		return &wire.Response{ID: req.ID, OK: true, Zxid: f.zxid, Session: *session,
			Secret: "s3cret", TimeoutMs: req.TimeoutMs, Server: "fake"}
	case wire.OpPing, wire.OpSync:
		return &wire.Response{ID: req.ID, OK: true, Zxid: f.zxid}
	case wire.OpClose:
		for p, n := range f.nodes {
			if n.owner == *session {
				delete(f.nodes, p)
			}
		}
		return &wire.Response{ID: req.ID, OK: true, Zxid: f.zxid}
	case wire.OpMembers:
		return &wire.Response{ID: req.ID, OK: true, Zxid: f.zxid, Members: []wire.Member{
			{Name: "fake", ClientURL: "ws://" + f.addr() + "/v1", PeerURL: "http://127.0.0.1:1", Role: wire.RoleLeader, Alive: true}}}
	case wire.OpMulti:
		return f.multi(*session, req)
	}
	r := f.one(*session, req)
	r.ID = req.ID
	return r
}

func (f *fakeServer) multi(session string, req *wire.Request) *wire.Response {
	saved, savedZxid := make(map[string]*fakeNode, len(f.nodes)), f.zxid
	for p, n := range f.nodes {
		cp := *n
		saved[p] = &cp
	}
	resp := &wire.Response{ID: req.ID, OK: true}
	for i := range req.Ops {
		r := f.one(session, &req.Ops[i])
		if !r.OK {
			f.nodes, f.zxid = saved, savedZxid
			r.ID, r.Index = req.ID, &i
			return r
		}
		resp.Results = append(resp.Results, *r)
	}
	resp.Zxid = f.zxid
	return resp
}

// one applies a single op (also a multi's sub-op); the caller sets the id.
func (f *fakeServer) one(session string, req *wire.Request) *wire.Response {
	n := f.nodes[req.Path]
	ok := func(r *wire.Response) *wire.Response { r.OK = true; r.Zxid = f.zxid; return r }
	switch req.Op {
	case wire.OpGet, wire.OpExists, wire.OpChildren, wire.OpSet, wire.OpDelete, wire.OpCheck:
		if n == nil && req.Op != wire.OpExists {
			return fail(0, wire.CodeNoNode, "%s does not exist", req.Path)
		}
	}
	if v := req.VersionOr(-1); n != nil && v != -1 && v != n.stat.Version {
		return fail(0, wire.CodeBadVersion, "%s is at version %d, not %d", req.Path, n.stat.Version, v)
	}
	switch req.Op {
	case wire.OpGet:
		st := n.stat
		return ok(&wire.Response{Data: n.data, Stat: wire.SomeStat(&st)})
	case wire.OpExists:
		if n == nil {
			return ok(&wire.Response{Stat: wire.SomeStat(nil)})
		}
		st := n.stat
		return ok(&wire.Response{Stat: wire.SomeStat(&st)})
	case wire.OpChildren:
		st := n.stat
		return ok(&wire.Response{Children: f.children(req.Path), Stat: wire.SomeStat(&st)})
	case wire.OpCheck:
		return ok(&wire.Response{})
	case wire.OpCreate:
		parent := f.nodes[parentOf(req.Path)]
		if parent == nil {
			return fail(0, wire.CodeNoNode, "%s does not exist", parentOf(req.Path))
		}
		p := req.Path
		if req.Sequential {
			p = fmt.Sprintf("%s%010d", p, parent.stat.Cversion)
		}
		if f.nodes[p] != nil {
			return fail(0, wire.CodeNodeExists, "%s already exists", p)
		}
		f.zxid++
		parent.stat.Cversion++
		parent.stat.NumChildren++
		nn := &fakeNode{data: req.Data, stat: wire.Stat{Czxid: f.zxid, Mzxid: f.zxid, Pzxid: f.zxid, DataLength: int64(len(req.Data))}}
		if req.Ephemeral {
			nn.owner, nn.stat.EphemeralOwner = session, session
		}
		f.nodes[p] = nn
		st := nn.stat
		return ok(&wire.Response{Path: p, Stat: wire.SomeStat(&st)})
	case wire.OpSet:
		f.zxid++
		n.data = req.Data
		n.stat.Version++
		n.stat.Mzxid = f.zxid
		n.stat.DataLength = int64(len(req.Data))
		st := n.stat
		return ok(&wire.Response{Stat: wire.SomeStat(&st)})
	case wire.OpDelete:
		kids := f.children(req.Path)
		if len(kids) > 0 && !req.Recursive {
			return fail(0, wire.CodeNotEmpty, "%s has children", req.Path)
		}
		f.zxid++
		for p := range f.nodes {
			if p == req.Path || strings.HasPrefix(p, req.Path+"/") {
				delete(f.nodes, p)
			}
		}
		f.nodes[parentOf(req.Path)].stat.NumChildren--
		return ok(&wire.Response{})
	}
	return fail(0, wire.CodeUnknownOp, "unknown op %q", req.Op)
}

func (f *fakeServer) children(p string) []string {
	prefix := p + "/"
	if p == "/" {
		prefix = "/"
	}
	var out []string
	for q := range f.nodes {
		if rest, ok := strings.CutPrefix(q, prefix); ok && rest != "" && !strings.Contains(rest, "/") {
			out = append(out, rest)
		}
	}
	sort.Strings(out)
	return out
}
