package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/session"
	"github.com/arbor-db/arbor/tree"
)

// propose stamps cmd, registers its waiter and hands it to raft; p then
// completes when the command is applied (build makes the response) or at
// its deadline. A proposal that raft refuses completes p at once.
func (s *server) propose(ctx context.Context, p *pending, cmd *command, build func(applyResult) *wire.Response) {
	// Tree writes wait for disk space; hello and close still go through, so
	// clients can connect to read and can end sessions.
	if cmd.Type == cmdTreeOps {
		if werr := s.disk.refuse(); werr != nil {
			p.resp = &wire.Response{ID: p.id, Error: werr}
			return
		}
	}
	select {
	case s.proposals <- struct{}{}:
	case <-ctx.Done():
		p.resp = &wire.Response{ID: p.id, Error: replicationError(errShuttingDown)}
		return
	}
	pctx, cancel := context.WithDeadline(ctx, p.deadline)
	wait, err := s.submit(pctx, cmd)
	cancel()
	if err != nil {
		s.releaseProposal()
		p.resp = &wire.Response{ID: p.id, Error: replicationError(err)}
		return
	}
	p.wait, p.origin, p.build = wait, cmd.Origin, build
}

func (s *server) releaseProposal() { <-s.proposals }

// buildOK answers a write that returns no fields.
func (s *server) buildOK(r applyResult) *wire.Response {
	if r.Err != nil {
		return &wire.Response{Error: toWireError(r.Err, 0, "")}
	}
	return &wire.Response{OK: true, Zxid: r.Zxid}
}

// buildSingle answers create, set or delete.
func (s *server) buildSingle(op tree.Op) func(applyResult) *wire.Response {
	return func(r applyResult) *wire.Response {
		if r.Err != nil {
			return &wire.Response{Error: toWireError(r.Err, op.Kind, op.Path)}
		}
		resp := opResponse(op.Kind, r.Results[0])
		resp.Zxid = r.Zxid
		return resp
	}
}

// buildMulti answers a multi: one result per sub-op, or the failing index.
func (s *server) buildMulti(ops []tree.Op) func(applyResult) *wire.Response {
	return func(r applyResult) *wire.Response {
		if r.Err != nil {
			var oe *tree.OpError
			if errors.As(r.Err, &oe) && oe.Index >= 0 && oe.Index < len(ops) {
				idx := oe.Index
				return &wire.Response{Error: toWireError(oe.Err, ops[idx].Kind, ops[idx].Path), Index: &idx}
			}
			return &wire.Response{Error: toWireError(r.Err, 0, "")}
		}
		results := make([]wire.Response, len(r.Results))
		for i, res := range r.Results {
			results[i] = *opResponse(ops[i].Kind, res)
		}
		return &wire.Response{OK: true, Zxid: r.Zxid, Results: results}
	}
}

// opResponse holds the fields one successful op answers.
func opResponse(kind tree.OpKind, r tree.Result) *wire.Response {
	resp := &wire.Response{OK: true}
	switch kind {
	case tree.OpCreate:
		resp.Path = r.Path
		resp.Stat = wire.SomeStat(toWireStat(r.Stat))
	case tree.OpSet:
		resp.Stat = wire.SomeStat(toWireStat(r.Stat))
	}
	return resp
}

func toWireStat(s tree.Stat) *wire.Stat {
	return &wire.Stat{
		Czxid: s.Czxid, Mzxid: s.Mzxid, Pzxid: s.Pzxid,
		Ctime: s.Ctime, Mtime: s.Mtime,
		Version: int64(s.Version), Cversion: int64(s.Cversion),
		DataLength: int64(s.DataLength), NumChildren: int64(s.NumChildren),
		EphemeralOwner: wire.FormatSession(s.EphemeralOwner),
	}
}

// okRead answers ping and sync.
func (s *server) okRead() *wire.Response {
	return &wire.Response{OK: true, Zxid: s.sm.appliedIndex()}
}

// treeReadNow evaluates get, exists or children against the local state.
func (s *server) treeReadNow(op, path string) (resp *wire.Response) {
	s.sm.read(func(v stateView) { resp = treeRead(v, op, path) })
	return resp
}

// treeRead evaluates get, exists or children in v.
func treeRead(v stateView, op, path string) *wire.Response {
	t := v.tree()
	resp := &wire.Response{OK: true, Zxid: v.zxid()}
	switch op {
	case wire.OpGet:
		data, st, err := t.Get(path)
		if err != nil {
			return &wire.Response{Error: toWireError(err, 0, path)}
		}
		resp.Data = append([]byte(nil), data...)
		resp.Stat = wire.SomeStat(toWireStat(st))
	case wire.OpExists:
		if st, ok := t.Exists(path); ok {
			resp.Stat = wire.SomeStat(toWireStat(st))
		} else {
			resp.Stat = wire.SomeStat(nil)
		}
	case wire.OpChildren:
		names, st, err := t.Children(path)
		if err != nil {
			return &wire.Response{Error: toWireError(err, 0, path)}
		}
		if names == nil {
			names = []string{}
		}
		resp.Children = names
		resp.Stat = wire.SomeStat(toWireStat(st))
	}
	return resp
}

// membersRead answers members: raft's view joined with the published
// attributes under /arbor/members.
func (s *server) membersRead() *wire.Response {
	infos := s.rep.Members()
	gossipAlive := s.gossipAlive()
	st := s.rep.Status()
	var progress map[uint64]uint64
	if mc, ok := s.rep.(membershipChanger); ok && st.IsLeader {
		ctx, cancel := context.WithTimeout(s.ctx, 200*time.Millisecond)
		progress, _ = mc.Progress(ctx)
		cancel()
	}
	var attrs map[string]memberAttrs
	var zxid uint64
	s.sm.read(func(v stateView) { attrs, zxid = v.memberAttrs(), v.zxid() })
	out := make([]wire.Member, 0, len(infos))
	for _, m := range infos {
		role := wire.RoleFollower
		switch {
		case m.Leader:
			role = wire.RoleLeader
		case m.Learner:
			role = wire.RoleLearner
		}
		alive := m.Alive
		if g, ok := gossipAlive[m.Name]; ok {
			// The same answer whichever member is asked (gossip converges),
			// where raft's "recently heard from" is each member's own. A
			// member that joined a moment ago may be in raft's configuration
			// before gossip has spread word of it here: until then, raft's
			// view answers, not "dead".
			alive = g
		}
		wm := wire.Member{
			Name: m.Name, PeerURL: m.PeerURL, ClientURL: attrs[m.Name].ClientURL,
			Role: role, Alive: alive,
		}
		if match, ok := progress[m.ID]; ok {
			lag := st.Commit - min(match, st.Commit)
			wm.Applied, wm.Lag = match, &lag
		} else if m.ID == s.id {
			wm.Applied = st.Applied
		}
		out = append(out, wm)
	}
	return &wire.Response{OK: true, Zxid: zxid, Members: out, NoLeader: st.Leader == 0, MembersHash: s.membersHash()}
}

// pingRead answers ping: it says how long ago this member sent the last
// renewal of the session that the leader confirmed (renewed_ago_ms), or
// UNAVAILABLE when this member cannot renew sessions at all, so that the
// client moves to another member in time.
func (c *conn) pingRead() *wire.Response {
	if why := c.srv.cutOff(c.timeout / 3); why != "" {
		return &wire.Response{Error: errorf(wire.CodeUnavailable, "%s", why)}
	}
	resp := &wire.Response{OK: true, Zxid: c.srv.sm.appliedIndex(), MembersHash: c.srv.membersHash()}
	if at := c.confirmed.Load(); at != 0 {
		// Rounded up: a client must never think the renewal more recent.
		ago := (c.srv.live.since() - at + int64(time.Millisecond) - 1) / int64(time.Millisecond)
		resp.RenewedAgoMs = &ago
	}
	return resp
}

// hello answers the first request of a connection, before the reader reads
// on: it creates a session or resumes one, and makes this connection the
// one serving it.
func (c *conn) hello(p *pending, req *wire.Request) {
	s := c.srv
	if c.session != 0 {
		c.fail(p, errorf(wire.CodeBadRequest, "hello was already done on this connection"))
		return
	}
	if req.Session == "" {
		c.newSession(p, req)
		return
	}
	id, err := wire.ParseSession(req.Session)
	if err != nil {
		c.fail(p, errorf(wire.CodeBadRequest, "field session: %v", err))
		return
	}
	if req.LastZxid > s.sm.appliedIndex() {
		done, cancel := context.WithDeadline(c.ctx, p.deadline)
		ok := s.sm.waitApplied(done.Done(), req.LastZxid)
		cancel()
		if !ok {
			c.fail(p, errorf(wire.CodeTimeout, "this member has not yet applied zxid %d; try another member", req.LastZxid))
			return
		}
	}
	sess, ok := s.lookupSession(id)
	if !ok {
		// It may have been created on another member a moment ago: catch up
		// with the leader before saying it does not exist.
		b := s.barrier.join()
		select {
		case <-b.done:
		case <-c.ctx.Done():
		case <-time.After(time.Until(p.deadline)):
		}
		sess, ok = s.lookupSession(id)
	}
	if !ok {
		c.fail(p, errorf(wire.CodeSessionExpired, "session %s has expired or is unknown", req.Session))
		return
	}
	if !session.CheckSecret(sess, req.Secret) {
		s.log.Info("resume refused: wrong secret", "session", req.Session, "remote", c.ws.RemoteAddr().String())
		c.fail(p, errorf(wire.CodeAuthFailed, "wrong secret for session %s", req.Session))
		return
	}
	c.session, c.timeout = id, time.Duration(sess.TimeoutMs)*time.Millisecond
	if werr := c.serveSession(); werr != nil {
		c.session = 0
		c.fail(p, werr)
		return
	}
	zxid := s.sm.appliedIndex()
	if s.sm.clusterVersion.Load() >= cmdSessionMoved.minClusterVersion() {
		// Through the log: every member closes the session's other
		// connections, and the session is checked alive at this zxid.
		r, werr := c.awaitCommand(p, &command{Type: cmdSessionMoved, Session: id, MovedTo: s.id, MovedConn: c.id})
		if werr == nil && r.Err != nil {
			werr = toWireError(r.Err, 0, "")
		}
		if werr != nil {
			s.live.deregister(c)
			c.session = 0
			c.fail(p, werr)
			return
		}
		zxid = r.Zxid
	}
	p.resp = &wire.Response{ID: p.id, OK: true, Zxid: zxid,
		Session: req.Session, Secret: req.Secret, TimeoutMs: sess.TimeoutMs, Server: s.cfg.Name}
}

// serveSession registers c as the connection serving its session here;
// one it replaces on this member is told so and closed.
func (c *conn) serveSession() *wire.Error {
	old, err := c.srv.live.register(c)
	if err != nil {
		c.srv.metrics.limits.WithLabelValues("sessions").Inc()
		return replicationError(err)
	}
	if old != nil && old != c {
		old.end(endMoved, "session resumed on another connection")
	}
	c.touched.Store(true)
	return nil
}

func (s *server) lookupSession(id uint64) (sess session.Session, ok bool) {
	s.sm.read(func(v stateView) { sess, ok = v.session(id) })
	return sess, ok
}

// awaitCommand proposes cmd for the hello p and waits for its result.
func (c *conn) awaitCommand(p *pending, cmd *command) (applyResult, *wire.Error) {
	s := c.srv
	s.propose(c.ctx, p, cmd, nil)
	if p.resp != nil {
		werr := p.resp.Error
		p.resp = nil
		return applyResult{}, werr
	}
	timer := time.NewTimer(time.Until(p.deadline))
	defer timer.Stop()
	var r applyResult
	select {
	case r = <-p.wait:
		s.releaseProposal()
	case <-timer.C:
		s.abandon(p)
		return applyResult{}, s.timedOut()
	case <-c.ctx.Done():
		s.abandon(p)
		return applyResult{}, replicationError(errShuttingDown)
	}
	p.wait = nil
	if r.Refused != nil {
		return applyResult{}, replicationError(r.Refused)
	}
	return r, nil
}

// newSession creates a session through raft and waits for it.
func (c *conn) newSession(p *pending, req *wire.Request) {
	s := c.srv
	if s.live.numConns() >= s.cfg.MaxSessions {
		s.metrics.limits.WithLabelValues("sessions").Inc()
		c.fail(p, replicationError(errTooManySessions(s.live.numConns())))
		return
	}
	timeout := req.TimeoutMs
	if timeout == 0 {
		timeout = defaultSessionMs
	}
	timeout = min(max(timeout, s.cfg.MinSessionMs), s.cfg.MaxSessionMs)
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails
	secret := hex.EncodeToString(raw[:])
	cmd := &command{Type: cmdCreateSession, SecretHash: session.HashSecret(secret), TimeoutMs: timeout}
	r, werr := c.awaitCommand(p, cmd)
	if werr == nil && r.Err != nil {
		werr = toWireError(r.Err, 0, "")
	}
	if werr != nil {
		c.fail(p, werr)
		return
	}
	c.session, c.timeout = r.Session, time.Duration(timeout)*time.Millisecond
	if werr := c.serveSession(); werr != nil {
		// Lost a race for the last slot: the session exists but nobody
		// holds it; it expires on its own.
		c.session = 0
		c.fail(p, werr)
		return
	}
	p.resp = &wire.Response{ID: p.id, OK: true, Zxid: r.Zxid, Session: wire.FormatSession(r.Session),
		Secret: secret, TimeoutMs: timeout, Server: s.cfg.Name}
}
