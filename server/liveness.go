package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arbor-db/arbor/session"
)

// Session liveness, member side. Every request of a connection marks it
// touched (one atomic store on the request path). Every RenewInterval the
// member sends the sessions of its touched connections to the leader in one
// batch (POST /internal/v1/renew, or a call when it leads itself). The
// leader renews them in its tracker, confirms its leadership with a
// ReadIndex round (so no other leader can have been elected before the
// renewal was taken), and answers which ones it did not renew. A connection
// whose session was confirmed remembers when the batch was sent; its pings
// answer renewed_ago_ms from that, which gives the client a deadline no
// later than the leader's (docs/architecture.md, "Session liveness").
type liveness struct {
	mu    sync.Mutex
	conns map[uint64]*conn // session id to the connection serving it here

	tracker *session.Tracker
	base    time.Time    // monotonic origin of the times below
	lastOK  atomic.Int64 // ns since base of the last confirmed round; 0: none yet

	// versions holds, on the leader, the cluster version each member last
	// said it runs (with its renewal batches), for raising the cluster
	// version.
	versionsMu sync.Mutex
	versions   map[string]memberVersion
}

type memberVersion struct {
	version uint64
	at      time.Time
}

// trackerGranularity is the width of the tracker's deadline buckets and the
// period of the leader's expiry scan.
const trackerGranularity = 50 * time.Millisecond

func newLiveness() *liveness {
	return &liveness{
		conns:    make(map[uint64]*conn),
		tracker:  session.NewTracker(time.Now, trackerGranularity),
		base:     time.Now(),
		versions: make(map[string]memberVersion),
	}
}

func (l *liveness) since() int64 { return int64(time.Since(l.base)) }

// register makes c the connection serving its session on this member and
// returns the one it replaces, if any.
func (l *liveness) register(c *conn) (old *conn, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old = l.conns[c.session]
	if old == nil && len(l.conns) >= c.srv.cfg.MaxSessions {
		return nil, errTooManySessions(len(l.conns))
	}
	l.conns[c.session] = c
	return old, nil
}

// errTooManySessions is the refusal of one session more than --max-sessions.
func errTooManySessions(n int) error {
	return fmt.Errorf("%w: this member serves %d sessions, the most it may (--max-sessions); connect to another member", errLimit, n)
}

// deregister forgets c, if it still serves its session here.
func (l *liveness) deregister(c *conn) {
	l.mu.Lock()
	if l.conns[c.session] == c {
		delete(l.conns, c.session)
	}
	l.mu.Unlock()
}

func (l *liveness) lookup(id uint64) *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[id]
}

func (l *liveness) numConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// touchedConn is a connection taken by a renewal round, with the session it
// served when taken (the connection's own field belongs to its reader).
type touchedConn struct {
	c  *conn
	id uint64
}

// collect takes the connections touched since the last round.
func (l *liveness) collect() []touchedConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []touchedConn
	for id, c := range l.conns {
		if c.touched.Swap(false) {
			out = append(out, touchedConn{c, id})
		}
	}
	return out
}

var (
	errLimit     = errors.New("server: limit reached")
	errNotLeader = errors.New("server: not the leader")
)

// onSessions keeps the tracker in step with the session table and tells
// this member's connections what happened to their sessions. It runs on the
// apply goroutine after each batch and never blocks.
func (s *server) onSessions(evs []sessionEvent) {
	for _, ev := range evs {
		switch ev.Kind {
		case sessionCreated:
			timeout := time.Duration(ev.TimeoutMs) * time.Millisecond
			if bugEarlyExpiry {
				timeout /= 3
			}
			s.live.tracker.Add(ev.ID, timeout)
		case sessionClosed:
			s.live.tracker.Remove(ev.ID)
		case sessionExpired:
			s.live.tracker.Remove(ev.ID)
			s.metrics.expired.Inc()
			if c := s.live.lookup(ev.ID); c != nil {
				c.end(endExpired, "session expired")
			}
		case sessionMoved:
			s.live.tracker.Touch(ev.ID)
			if c := s.live.lookup(ev.ID); c != nil && (ev.MovedTo != s.id || ev.MovedConn != c.id) {
				c.end(endMoved, "session resumed on another connection")
			}
		}
	}
}

// onRestore rebuilds the tracker from a restored session table and ends the
// connections whose sessions the snapshot no longer holds.
func (s *server) onRestore() {
	var all map[uint64]time.Duration
	s.sm.read(func(v stateView) {
		all = make(map[uint64]time.Duration, v.numSessions())
		for _, id := range v.sessionIDs() {
			sess, _ := v.session(id)
			all[id] = time.Duration(sess.TimeoutMs) * time.Millisecond
			if bugEarlyExpiry {
				all[id] /= 3
			}
		}
	})
	s.live.tracker.Replace(all)
	s.live.mu.Lock()
	var gone []*conn
	var ids []uint64
	for id, c := range s.live.conns {
		if _, ok := all[id]; !ok {
			gone, ids = append(gone, c), append(ids, id)
		}
	}
	s.live.mu.Unlock()
	if len(gone) > 0 {
		s.log.Info("snapshot restored without sessions served here; ending their connections", "sessions", len(gone), "ids", sessionList(ids, 32))
	}
	for _, c := range gone {
		c.end(endExpired, "session expired")
	}
}

// renewLoop sends this member's renewals to the leader every RenewInterval.
func (s *server) renewLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.RenewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.renewRound(ctx)
	}
}

// renewRound sends one batch and records what the leader confirmed.
func (s *server) renewRound(ctx context.Context) {
	batch := s.live.collect()
	ids := make([]uint64, len(batch))
	for i, t := range batch {
		ids[i] = t.id
	}
	sent := s.live.since()
	rctx, cancel := context.WithTimeout(ctx, s.renewTimeout())
	notRenewed, err := s.sendRenewals(rctx, ids)
	cancel()
	if err != nil {
		for _, t := range batch {
			t.c.touched.Store(true) // with the next round
		}
		s.metrics.renewRounds.WithLabelValues("failed").Inc()
		if ctx.Err() == nil {
			s.log.Debug("session renewal round failed", "sessions", len(ids), "err", err)
		}
		return
	}
	s.metrics.renewRounds.WithLabelValues("ok").Inc()
	s.live.lastOK.Store(max(sent, 1))
	refused := make(map[uint64]bool, len(notRenewed))
	for _, id := range notRenewed {
		refused[id] = true
	}
	for _, t := range batch {
		if !refused[t.id] {
			t.c.confirmed.Store(sent)
		}
	}
}

func (s *server) renewTimeout() time.Duration { return max(time.Second, 5*s.cfg.RenewInterval) }

// cutOff reports why this member cannot currently renew the sessions of
// its clients, or "": no leader, or no renewal round confirmed for longer
// than grace. Pings then answer UNAVAILABLE, so clients move to a member
// that can renew them before their sessions expire. grace is the larger of
// renewTimeout and a third of the session's timeout, so that a short
// leader election does not send every client elsewhere.
func (s *server) cutOff(grace time.Duration) string {
	last := s.live.lastOK.Load()
	now := s.live.since()
	if last == 0 {
		last = s.started // the first round may not have finished yet
	}
	ago := time.Duration(now - last)
	if ago <= max(grace, s.renewTimeout()) {
		return ""
	}
	if s.rep.Status().Leader == 0 {
		return "this member has no leader, so it cannot renew sessions; try another member"
	}
	return fmt.Sprintf("this member cannot reach the leader to renew sessions (last renewal confirmed %s ago); try another member", ago.Round(time.Millisecond))
}

// sendRenewals renews ids with the leader: a call when this member leads,
// else a POST to the leader's client address.
func (s *server) sendRenewals(ctx context.Context, ids []uint64) ([]uint64, error) {
	st := s.rep.Status()
	switch {
	case st.IsLeader:
		s.noteVersion(s.cfg.Name, s.sm.supported)
		return s.confirmRenewals(ctx, ids)
	case st.Leader == 0:
		return nil, errNotLeader
	}
	addr := s.clientAddrOf(st.Leader)
	if addr == "" {
		return nil, fmt.Errorf("%w: the leader's client address is not known yet", errNotLeader)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+renewPath, bytes.NewReader(encodeRenewal(ids)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(hdrMember, s.cfg.Name)
	req.Header.Set(hdrVersion, strconv.FormatUint(s.sm.supported, 10))
	resp, err := s.renewClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRenewBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("leader %s answered %s: %s", addr, resp.Status, bytes.TrimSpace(body))
	}
	return decodeRenewal(body)
}

// Internal endpoint and headers of the renewal batches.
const (
	renewPath  = "/internal/v1/renew"
	hdrMember  = "Arbor-Member"
	hdrVersion = "Arbor-Version"
)

// serveRenew is the leader's side of a member's renewal batch.
func (s *server) serveRenew(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRenewBody+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ids, err := decodeRenewal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if name := r.Header.Get(hdrMember); name != "" {
		if v, err := strconv.ParseUint(r.Header.Get(hdrVersion), 10, 64); err == nil {
			s.noteVersion(name, v)
		}
	}
	notRenewed, err := s.confirmRenewals(r.Context(), ids)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(encodeRenewal(notRenewed))
}

// confirmRenewals renews ids in the leader's tracker and returns those it
// did not renew. It answers only after a ReadIndex round that began after
// the renewals were taken, and only if this member led in the same term
// from before the renewals to after the round: had another member been
// elected leader before the round, it would have failed (or been answered
// by that leader, which the term check refuses), so every renewal confirmed
// here was taken before any later leader's term began, and that leader's
// fresh timeouts outlast it. Sessions found gone after the round (an expiry committed
// before it) or being expired are not renewed.
func (s *server) confirmRenewals(ctx context.Context, ids []uint64) ([]uint64, error) {
	st := s.rep.Status()
	if !st.IsLeader {
		return nil, errNotLeader
	}
	touched := make([]bool, len(ids))
	for i, id := range ids {
		touched[i] = s.live.tracker.Touch(id)
	}
	b := s.barrier.join()
	select {
	case <-b.done:
		if b.err != nil {
			return nil, b.err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// The round confirmed a leader, not necessarily this member: one that
	// stepped down meanwhile has its ReadIndex answered by the new leader,
	// whose tracker never took these renewals and may expire the sessions
	// a full timeout after its own election, before this renewal's. Only a
	// member that led in the same term all along confirms.
	if now := s.rep.Status(); !now.IsLeader || now.Term != st.Term {
		s.log.Info("renewals not confirmed: leadership moved during the round", "sessions", len(ids), "term", st.Term, "now", now.Term, "leading", now.IsLeader)
		return nil, fmt.Errorf("%w: leadership moved during the renewal round (term %d, now %d)", errNotLeader, st.Term, now.Term)
	}
	var out []uint64
	s.sm.read(func(v stateView) {
		for i, id := range ids {
			_, exists := v.session(id)
			_, live := s.live.tracker.Remaining(id)
			if !touched[i] || !exists || !live {
				out = append(out, id)
			}
		}
	})
	return out, nil
}

// noteVersion records the cluster version a member runs.
func (s *server) noteVersion(name string, v uint64) {
	s.live.versionsMu.Lock()
	s.live.versions[name] = memberVersion{version: v, at: time.Now()}
	s.live.versionsMu.Unlock()
}

// clientAddrOf returns the published client address of member id.
func (s *server) clientAddrOf(id uint64) string {
	var name string
	for _, m := range s.rep.Members() {
		if m.ID == id {
			name = m.Name
		}
	}
	if name == "" {
		return ""
	}
	var addr string
	s.sm.read(func(v stateView) { addr = v.memberAttrs()[name].ClientURL })
	return addr
}
