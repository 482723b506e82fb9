package client

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
)

// fakeServer is one member of a fake cluster. It speaks enough of the
// protocol for the client's unit tests: an in-memory tree with versions,
// sequential and ephemeral nodes, sessions that resume on any member and
// expire timeout_ms after their last renewal, and hooks to misbehave. Paths
// under /fail/CODE answer that error code. Members of one cluster share
// fakeData, and with it one mutex.
type fakeServer struct {
	*fakeData
	name string
	logf func(format string, args ...any)
	srv  *httptest.Server // nil on a fakeNet
	http *http.Server     // on a fakeNet
	ln   *pipeListener    // on a fakeNet

	// Set before the member starts.
	dropPath string // closes the connection, unanswered, on a request for it
	hangPath string // never answered

	// The rest is guarded by mu.
	swapPairs bool // answer each two requests in reverse order
	// refuse answers connection attempts with HTTP 503.
	refuse bool
	// stall leaves connection attempts hanging, before the upgrade.
	stall bool
	// unavailable answers pings UNAVAILABLE and renews nothing: the member
	// is cut off from the leader and knows it.
	unavailable bool
	// frozen serves requests but renews nothing: the member is cut off
	// and does not know it; its pings say when the session was renewed.
	frozen bool
	// noRenewal leaves renewed_ago_ms out of ping answers, as the server
	// does today.
	noRenewal bool
	// pingDelay holds each ping answer back after computing it, as a slow
	// network back to the client would.
	pingDelay time.Duration
	// once holds one-shot actions by path: "drop" closes the connection,
	// unanswered, on the next request for that path; "applyDrop" applies
	// it first.
	once     map[string]string
	attempts []time.Time // every connection attempt, refused or not
	conns    map[*websocket.Conn]bool
	down     bool // shut down
	wg       sync.WaitGroup
}

// fakeData is what the members of one fake cluster share.
type fakeData struct {
	mu       sync.Mutex
	nodes    map[string]*fakeNode
	zxid     uint64
	sessions map[string]*fakeSession
	nsess    int
	ops      []string       // every op received, in order
	hellos   []wire.Request // every hello received, in order
	noExpiry bool           // sessions never expire, as the server does today
}

type fakeSession struct {
	secret  string
	timeout time.Duration
	renewed time.Time // last renewal
	ended   bool      // closed or expired
}

type fakeNode struct {
	data  []byte
	stat  wire.Stat
	owner string
}

func newFakeData() *fakeData {
	return &fakeData{nodes: map[string]*fakeNode{"/": {}}, sessions: make(map[string]*fakeSession)}
}

// newFakeServer starts a one-member cluster on loopback.
func newFakeServer(t *testing.T, configure ...func(*fakeServer)) *fakeServer {
	t.Helper()
	f := startFake(t.Logf, configure...)
	t.Cleanup(f.shutdown)
	return f
}

// startFake starts a one-member cluster on loopback; the caller calls
// shutdown.
func startFake(logf func(string, ...any), configure ...func(*fakeServer)) *fakeServer {
	f := &fakeServer{fakeData: newFakeData(), name: "fake", logf: logf,
		conns: make(map[*websocket.Conn]bool), once: make(map[string]string)}
	for _, c := range configure {
		c(f)
	}
	f.srv = httptest.NewServer(f)
	return f
}

func (f *fakeServer) addr() string {
	if f.ln != nil {
		return f.ln.addr
	}
	return strings.TrimPrefix(f.srv.URL, "http://")
}

func (f *fakeServer) shutdown() {
	if f.srv != nil {
		f.srv.Close()
	} else {
		f.http.Close()
	}
	f.mu.Lock()
	f.down = true // no upgrade after this: the connections below are all
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// set changes the member's knobs under its lock.
func (f *fakeServer) set(change func(f *fakeServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// dropAll closes every connection of the member, as a crash would.
func (f *fakeServer) dropAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
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

func (f *fakeServer) setSwapPairs(on bool) { f.set(func(f *fakeServer) { f.swapPairs = on }) }

func (f *fakeData) seenOps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops...)
}

func (f *fakeData) seenHellos() []wire.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wire.Request(nil), f.hellos...)
}

func (f *fakeData) countOps(op string) int {
	n := 0
	for _, o := range f.seenOps() {
		if o == op {
			n++
		}
	}
	return n
}

func (f *fakeServer) connAttempts() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.attempts...)
}

// expiresAt is when the cluster expires session, if nothing renews it.
func (f *fakeServer) expiresAt(session string) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sessions[session]
	return s.renewed.Add(s.timeout)
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != wire.EndpointPath {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	f.attempts = append(f.attempts, time.Now())
	refuse, stall := f.refuse, f.stall
	f.mu.Unlock()
	if stall {
		<-r.Context().Done() // the client gave up, or shutdown
		return
	}
	if refuse {
		http.Error(w, "refusing connections", http.StatusServiceUnavailable)
		return
	}
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		conn.Close()
		return
	}
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
	f.serveConn(conn)
}

func (f *fakeServer) serveConn(conn *websocket.Conn) {
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
		action := f.once[req.Path]
		delete(f.once, req.Path)
		if action == "drop" {
			f.mu.Unlock()
			return
		}
		resp := f.apply(&session, &req)
		if action == "applyDrop" {
			f.mu.Unlock()
			return
		}
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
		if delay := f.pingDelay; req.Op == wire.OpPing && delay > 0 {
			f.mu.Unlock()
			time.Sleep(delay)
			f.mu.Lock()
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

// live returns the session if it has not ended, ending it first if its
// timeout has passed since its last renewal.
func (f *fakeServer) live(id string) *fakeSession {
	s := f.sessions[id]
	if s == nil || s.ended {
		return nil
	}
	if !f.noExpiry && !time.Now().Before(s.renewed.Add(s.timeout)) {
		f.endSession(id)
		return nil
	}
	return s
}

func (f *fakeServer) endSession(id string) {
	f.sessions[id].ended = true
	for p, n := range f.nodes {
		if n.owner == id {
			delete(f.nodes, p)
		}
	}
}

// hello opens or resumes a session, with f.mu held.
func (f *fakeServer) hello(session *string, req *wire.Request) *wire.Response {
	f.hellos = append(f.hellos, *req)
	if req.Session == "" {
		f.nsess++
		*session = wire.FormatSession(uint64(f.nsess))
		f.sessions[*session] = &fakeSession{secret: fmt.Sprintf("secret-%d", f.nsess),
			timeout: time.Duration(req.TimeoutMs) * time.Millisecond, renewed: time.Now()}
	} else {
		s := f.live(req.Session)
		switch {
		case s == nil:
			return fail(req.ID, wire.CodeSessionExpired, "session %s has expired or is unknown", req.Session)
		case s.secret != req.Secret:
			return fail(req.ID, wire.CodeAuthFailed, "wrong secret for session %s", req.Session)
		}
		*session = req.Session
	}
	s := f.sessions[*session]
	return &wire.Response{ID: req.ID, OK: true, Zxid: f.zxid, Session: *session,
		Secret: s.secret, TimeoutMs: s.timeout.Milliseconds(), Server: f.name}
}

// apply runs one request with f.mu held.
func (f *fakeServer) apply(session *string, req *wire.Request) *wire.Response {
	if req.Op == wire.OpHello {
		return f.hello(session, req)
	}
	if *session == "" {
		return fail(req.ID, wire.CodeNoSession, "say hello first")
	}
	s := f.live(*session)
	if s == nil {
		return fail(req.ID, wire.CodeSessionExpired, "session %s has expired", *session)
	}
	if req.Op == wire.OpPing && f.unavailable {
		return fail(req.ID, wire.CodeUnavailable, "no leader")
	}
	if !f.frozen && !f.unavailable {
		s.renewed = time.Now()
	}
	if code, ok := strings.CutPrefix(req.Path, "/fail/"); ok {
		return fail(req.ID, wire.Code(code), "asked to fail")
	}
	switch req.Op {
	case wire.OpPing:
		r := &wire.Response{ID: req.ID, OK: true, Zxid: f.zxid}
		if !f.noRenewal {
			ago := time.Since(s.renewed).Milliseconds()
			r.RenewedAgoMs = &ago
		}
		return r
	case wire.OpSync:
		return &wire.Response{ID: req.ID, OK: true, Zxid: f.zxid}
	case wire.OpClose:
		f.endSession(*session)
		return &wire.Response{ID: req.ID, OK: true, Zxid: f.zxid}
	case wire.OpMembers:
		return &wire.Response{ID: req.ID, OK: true, Zxid: f.zxid, Members: []wire.Member{
			{Name: f.name, ClientURL: "ws://" + f.addr() + "/v1", PeerURL: "http://127.0.0.1:1", Role: wire.RoleLeader, Alive: true}}}
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
