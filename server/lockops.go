package server

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/tree"
	"github.com/arbor-db/arbor/watch"
)

// The lock, unlock, elect, resign and leader ops. lock and elect are writes
// (a Lock command) that answer in request order when the child holds at
// once. Otherwise the writer moves on to later requests and the answer
// comes when apply grants the child: the conn checks and registers its
// waiter in one view, so no grant slips in between, and apply, which
// computes every grant (grantAfterDeletes), queues the answer on the
// connection's event queue at the granting zxid, after that zxid's watch
// events, never blocking. A waiter is woken only by the grant or the
// deletion of its own child: one release wakes exactly the waiters it
// admits.

// deferredResponse is what a lock or elect build returns when the answer
// comes later: the writer writes nothing for it then.
var deferredResponse = &wire.Response{}

// lockWaiter is a lock or elect request waiting for its child's grant.
type lockWaiter struct {
	c       *conn
	session uint64
	id      uint64
	op      string
	start   time.Time
	node    string
	token   uint64
	// timedOut is set when wait_ms ran out and the child is being
	// withdrawn: its deletion then answers TIMEOUT.
	timedOut atomic.Bool
	timer    *time.Timer
}

// lockWaiters indexes the waiters by child path and by connection. A
// child may have several: a client that sent lock twice for one path (the
// second goes on with the first's child) is answered twice.
type lockWaiters struct {
	byNode map[string][]*lockWaiter
	byConn map[*conn]map[*lockWaiter]struct{}
	n      int
}

func newLockWaiters() lockWaiters {
	return lockWaiters{byNode: make(map[string][]*lockWaiter), byConn: make(map[*conn]map[*lockWaiter]struct{})}
}

func (ws *lockWaiters) add(w *lockWaiter) {
	ws.byNode[w.node] = append(ws.byNode[w.node], w)
	m := ws.byConn[w.c]
	if m == nil {
		m = make(map[*lockWaiter]struct{})
		ws.byConn[w.c] = m
	}
	m[w] = struct{}{}
	ws.n++
}

func (ws *lockWaiters) remove(w *lockWaiter) {
	list := ws.byNode[w.node]
	for i, o := range list {
		if o == w {
			list = append(list[:i:i], list[i+1:]...)
			ws.n--
			break
		}
	}
	if len(list) == 0 {
		delete(ws.byNode, w.node)
	} else {
		ws.byNode[w.node] = list
	}
	if m := ws.byConn[w.c]; m != nil {
		delete(m, w)
		if len(m) == 0 {
			delete(ws.byConn, w.c)
		}
	}
}

// take removes and returns every waiter of child p.
func (ws *lockWaiters) take(p string) []*lockWaiter {
	list := ws.byNode[p]
	for _, w := range slices.Clone(list) {
		ws.remove(w)
	}
	return list
}

// addWaiter registers w (under the read lock; watchMu orders readers).
func (v stateView) addWaiter(w *lockWaiter) {
	v.sm.watchMu.Lock()
	defer v.sm.watchMu.Unlock()
	v.sm.waiters.add(w)
}

// dropWaiters forgets c's waiters (its connection ended). Their children
// stay queued, owned by the session: a client that resumes asks again and
// goes on with the same child. A finite wait keeps its timer, which still
// withdraws the child when it runs out.
func (v stateView) dropWaiters(c *conn) {
	v.sm.watchMu.Lock()
	defer v.sm.watchMu.Unlock()
	for w := range v.sm.waiters.byConn[c] {
		v.sm.waiters.remove(w)
	}
}

func (v stateView) numWaiters() int {
	v.sm.watchMu.Lock()
	defer v.sm.watchMu.Unlock()
	return v.sm.waiters.n
}

// settleWaiters answers the waiters whose children the command just applied
// granted or deleted. Called by publish with mu held; never blocks.
func (sm *stateMachine) settleWaiters(evs []tree.Event) {
	grants := sm.grants
	sm.grants = sm.grants[:0]
	if len(sm.waiters.byNode) == 0 {
		return
	}
	zxid := evs[len(evs)-1].Zxid
	for _, p := range grants {
		for _, w := range sm.waiters.take(p) {
			w.answer(zxid, &wire.Response{OK: true, Token: &w.token, Node: w.node})
		}
	}
	for i := range evs {
		if evs[i].Type != tree.EventDeleted {
			continue
		}
		for _, w := range sm.waiters.take(evs[i].Path) {
			w.answer(zxid, &wire.Response{Error: sm.withdrawnError(w)})
		}
	}
}

// recheckWaiters settles every waiter against a restored state, whose
// changes since the old one came without events. Called with mu held.
func (sm *stateMachine) recheckWaiters() {
	zxid := sm.applied.Load()
	var all []*lockWaiter
	for _, list := range sm.waiters.byNode {
		all = append(all, list...)
	}
	for _, w := range all {
		switch stateOf(sm.tree, w.node, w.token) {
		case childGone:
			sm.waiters.remove(w)
			w.answer(zxid, &wire.Response{Error: sm.withdrawnError(w)})
		case childHolds:
			sm.waiters.remove(w)
			w.answer(zxid, &wire.Response{OK: true, Token: &w.token, Node: w.node})
		}
	}
}

// withdrawnError says why a waiting child went before its grant.
func (sm *stateMachine) withdrawnError(w *lockWaiter) *wire.Error {
	switch {
	case w.timedOut.Load():
		return errorf(wire.CodeTimeout, "%s was not granted within wait_ms; its waiting node %s was withdrawn", w.op, w.node)
	case !sm.hasSession(w.session):
		return errorf(wire.CodeSessionExpired, "the session ended while waiting; its node %s went with it", w.node)
	}
	return errorf(wire.CodeNotHeld, "the waiting node %s was deleted before it was granted (unlock or resign withdraws it)", w.node)
}

func (sm *stateMachine) hasSession(id uint64) bool {
	_, ok := sm.sessions.Get(id)
	return ok
}

// answer queues w's response on its connection at zxid. Never blocks.
func (w *lockWaiter) answer(zxid uint64, resp *wire.Response) {
	if w.timer != nil && resp.Error == nil {
		w.timer.Stop()
	}
	resp.ID = w.id
	if resp.Error == nil {
		resp.Zxid = zxid
	}
	w.c.srv.metrics.observe(w.op, resp, time.Since(w.start))
	if resp.Error == nil {
		w.c.srv.metrics.lockGrants.WithLabelValues(w.op).Inc()
	}
	w.c.events.push([]queuedEvent{{zxid: zxid, size: 256, resp: resp}}, true)
}

// lockOp validates lock and elect and proposes the Lock command.
func (c *conn) lockOp(p *pending, req *wire.Request) {
	s := c.srv
	spec, werr := c.lockSpec(req)
	if werr == nil {
		werr = s.checkCreates(c.session, []tree.Op{{Kind: tree.OpCreate, Owner: c.session}})
	}
	if werr != nil {
		c.fail(p, werr)
		return
	}
	var deadline time.Time // zero: wait for ever
	if req.WaitMs != nil && *req.WaitMs > 0 {
		deadline = p.start.Add(time.Duration(*req.WaitMs) * time.Millisecond)
	}
	cmd := &command{Type: cmdLock, Session: c.session, Lock: spec}
	id, op, start := p.id, p.op, p.start
	s.propose(c.ctx, p, cmd, func(r applyResult) *wire.Response {
		return c.settleLock(r, spec, id, op, start, deadline)
	})
}

// lockSpec validates a lock or elect request.
func (c *conn) lockSpec(req *wire.Request) (lockSpec, *wire.Error) {
	s := c.srv
	if werr := s.checkPath(req.Path); werr != nil {
		return lockSpec{}, werr
	}
	if isReserved(req.Path) {
		return lockSpec{}, errorf(wire.CodeReadOnly, "%s is reserved for the server", req.Path)
	}
	if v := s.sm.clusterVersion.Load(); v < cmdLock.minClusterVersion() {
		return lockSpec{}, errorf(wire.CodeBadRequest, "locks and elections need cluster version %d; this cluster runs version %d until every member is upgraded",
			cmdLock.minClusterVersion(), v)
	}
	spec := lockSpec{Path: req.Path, Kind: lockWrite}
	if req.Op == wire.OpElect {
		switch {
		case req.WaitMs != nil:
			return lockSpec{}, errorf(wire.CodeBadRequest, "field wait_ms: elect waits until elected (lock takes wait_ms)")
		case req.Shared:
			return lockSpec{}, errorf(wire.CodeBadRequest, "field shared: only lock takes shared")
		case len(req.Value) > s.cfg.MaxDataBytes:
			return lockSpec{}, errorf(wire.CodeTooLarge, "value of %d bytes is over the limit of %d bytes", len(req.Value), s.cfg.MaxDataBytes)
		}
		spec.Kind, spec.Value = lockCandidate, req.Value
		if len(spec.Value) == 0 {
			spec.Value = nil
		}
		spec.Class = classElection
		return spec, nil
	}
	if len(req.Value) > 0 {
		return lockSpec{}, errorf(wire.CodeBadRequest, "field value: only elect takes a value")
	}
	if req.Shared {
		spec.Kind = lockRead
	}
	spec.Class = classLock
	if req.WaitMs != nil {
		switch w := *req.WaitMs; {
		case w < -1:
			return lockSpec{}, errorf(wire.CodeBadRequest, "field wait_ms: -1 (wait for ever), 0 (try once) or a positive number of milliseconds, got %d", w)
		case w == 0:
			spec.Try = true
		}
	}
	return spec, nil
}

// settleLock answers a lock or elect once its Lock command is applied: at
// once when its child holds, else later (deferredResponse) through a waiter
// registered in the same view that found the child still waiting.
func (c *conn) settleLock(r applyResult, spec lockSpec, id uint64, op string, start, deadline time.Time) *wire.Response {
	s := c.srv
	if r.Err != nil {
		return &wire.Response{Error: lockError(r.Err, op, spec.Path)}
	}
	node, token := r.Results[0].Path, r.Results[0].Stat.Czxid
	if r.Granted {
		s.metrics.lockGrants.WithLabelValues(op).Inc()
		return &wire.Response{OK: true, Zxid: r.Zxid, Token: &token, Node: node}
	}
	w := &lockWaiter{c: c, session: c.session, id: id, op: op, start: start, node: node, token: token}
	if !deadline.IsZero() {
		w.timer = time.AfterFunc(time.Until(deadline), func() {
			w.timedOut.Store(true)
			s.withdraw(withdrawal{session: w.session, dir: spec.Path, class: spec.Class, czxid: token})
		})
	}
	var resp *wire.Response
	s.sm.read(func(v stateView) {
		switch stateOf(v.tree(), node, token) {
		case childGone:
			resp = &wire.Response{Error: v.sm.withdrawnError(w)}
		case childHolds:
			s.metrics.lockGrants.WithLabelValues(op).Inc()
			resp = &wire.Response{OK: true, Zxid: v.zxid(), Token: &token, Node: node}
		default:
			v.addWaiter(w)
			resp = deferredResponse
		}
	})
	if resp != deferredResponse && w.timer != nil {
		w.timer.Stop()
	}
	return resp
}

// lockError maps the error of a Lock or Unlock command.
func lockError(err error, op, dir string) *wire.Error {
	switch {
	case errors.Is(err, errWouldWait):
		return errorf(wire.CodeTimeout, "%s is held; wait_ms 0 tries once and does not queue", dir)
	case errors.Is(err, errKindHeld):
		return errorf(wire.CodeNodeExists, "this session already queues for %s in the other mode (%s); unlock it first",
			dir, strings.TrimPrefix(err.Error(), errKindHeld.Error()+": "))
	case errors.Is(err, errNotHeld):
		if op == wire.OpResign {
			return errorf(wire.CodeNotHeld, "this session is not a candidate in %s", dir)
		}
		return errorf(wire.CodeNotHeld, "this session neither holds nor waits for %s", dir)
	}
	return toWireError(err, tree.OpCreate, dir)
}

// unlockOp validates unlock and resign and proposes the Unlock command.
func (c *conn) unlockOp(p *pending, req *wire.Request) {
	s := c.srv
	if werr := s.checkPath(req.Path); werr != nil {
		c.fail(p, werr)
		return
	}
	if v := s.sm.clusterVersion.Load(); v < cmdUnlock.minClusterVersion() {
		c.fail(p, errorf(wire.CodeBadRequest, "locks and elections need cluster version %d; this cluster runs version %d",
			cmdUnlock.minClusterVersion(), v))
		return
	}
	class := classLock
	if req.Op == wire.OpResign {
		class = classElection
	}
	cmd := &command{Type: cmdUnlock, Session: c.session, Lock: lockSpec{Path: req.Path, Class: class}}
	op, dir := req.Op, req.Path
	s.propose(c.ctx, p, cmd, func(r applyResult) *wire.Response {
		if r.Err != nil {
			return &wire.Response{Error: lockError(r.Err, op, dir)}
		}
		return &wire.Response{OK: true, Zxid: r.Zxid}
	})
}

// leaderOp validates leader and queues its evaluation.
func (c *conn) leaderOp(p *pending, req *wire.Request) {
	if werr := c.srv.checkPath(req.Path); werr != nil {
		c.fail(p, werr)
		return
	}
	watchIt, err := req.WatchFlag()
	if err != nil {
		c.fail(p, errorf(wire.CodeBadRequest, "%v", err))
		return
	}
	dir := req.Path
	p.read = func() *wire.Response { return c.leaderRead(dir, watchIt) }
	if !req.Local && !bugStaleRead {
		p.batch = c.srv.barrier.join()
	}
}

// leaderRead answers leader. Its watch is a one-shot watch that fires at
// the first change that may change the answer: on the leader's node (its
// deletion, or a new value), or, with no leader, on the children of the
// election path (or on its creation); the client asks again then.
func (c *conn) leaderRead(dir string, watchIt bool) (resp *wire.Response) {
	c.srv.sm.read(func(v stateView) {
		if watchIt {
			if werr := c.checkWatchLimit(v); werr != nil {
				resp = &wire.Response{Error: werr}
				return
			}
		}
		lf := &wire.LeaderFrame{OK: true, Zxid: v.zxid()}
		node, data, st, ok := currentLeader(v.tree(), dir)
		if ok {
			if data == nil {
				data = []byte{}
			}
			sess := wire.FormatSession(st.EphemeralOwner)
			token := st.Czxid
			lf.Value, lf.Session, lf.Token = &data, &sess, &token
		}
		if watchIt {
			spec := watch.Spec{Kind: watch.Exists, Path: dir}
			switch {
			case ok:
				spec.Path = node
			default:
				if _, exists := v.tree().Exists(dir); exists {
					spec.Kind = watch.Children
				}
			}
			lf.Watch = v.addWatch(c, spec)
			c.srv.metrics.watchesSet.WithLabelValues(spec.Kind.String()).Inc()
		}
		resp = &wire.Response{OK: true, Zxid: lf.Zxid, Leader: lf}
	})
	return resp
}

// withdrawal is a waiting child to delete because its wait ran out.
type withdrawal struct {
	session uint64
	dir     string
	class   lockClass
	czxid   uint64
}

// withdrawer proposes the withdrawals of waits that ran out, retrying each
// until it is applied or moot: a child left queued after its client was
// told TIMEOUT would be granted to nobody who wants it.
type withdrawer struct {
	mu    sync.Mutex
	queue []withdrawal
	ready chan struct{}
}

func newWithdrawer() *withdrawer { return &withdrawer{ready: make(chan struct{}, 1)} }

// withdraw queues w for the withdraw loop; it never blocks (timers call it).
func (s *server) withdraw(w withdrawal) {
	s.withdrawals.mu.Lock()
	s.withdrawals.queue = append(s.withdrawals.queue, w)
	s.withdrawals.mu.Unlock()
	select {
	case s.withdrawals.ready <- struct{}{}:
	default:
	}
}

// withdrawLoop runs until ctx ends; Run owns it.
func (s *server) withdrawLoop(done <-chan struct{}) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-done:
			return
		case <-s.withdrawals.ready:
		case <-retry.C:
		}
		s.withdrawals.mu.Lock()
		jobs := s.withdrawals.queue
		s.withdrawals.queue = nil
		s.withdrawals.mu.Unlock()
		var wg sync.WaitGroup
		var failed []withdrawal
		var mu sync.Mutex
		for _, j := range jobs {
			wg.Go(func() {
				cmd := &command{Type: cmdUnlock, Session: j.session, Lock: lockSpec{Path: j.dir, Class: j.class, Withdraw: j.czxid}}
				if _, err := s.proposeWait(s.ctx, cmd); err != nil {
					mu.Lock()
					failed = append(failed, j)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(failed) > 0 {
			s.withdrawals.mu.Lock()
			s.withdrawals.queue = append(s.withdrawals.queue, failed...)
			s.withdrawals.mu.Unlock()
			retry.Reset(100 * time.Millisecond)
		}
	}
}
