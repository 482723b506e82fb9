package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/server/servertest/lincheck"
)

// vanishTimeoutMs is the timeout abandoned sessions ask for (the cluster's
// minimum in this suite).
const vanishTimeoutMs = 1000

// rawSession is a bare protocol connection, as a client process would hold,
// so that the workload can vanish without a close and resume by secret.
type rawSession struct {
	ws *websocket.Conn
	id uint64
}

func rawDial(ctx context.Context, addr string) (*rawSession, error) {
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: opTimeout}
	ws, _, err := d.DialContext(ctx, "ws://"+addr+wire.EndpointPath, nil)
	if err != nil {
		return nil, err
	}
	return &rawSession{ws: ws}, nil
}

// call sends r and waits for its answer, skipping events.
func (s *rawSession) call(ctx context.Context, r wire.Request) (wire.Response, error) {
	s.id++
	r.ID = s.id
	dl, _ := ctx.Deadline()
	_ = s.ws.SetWriteDeadline(dl)
	_ = s.ws.SetReadDeadline(dl)
	if err := s.ws.WriteJSON(r); err != nil {
		return wire.Response{}, err
	}
	for {
		_, b, err := s.ws.ReadMessage()
		if err != nil {
			return wire.Response{}, err
		}
		var resp wire.Response
		if err := json.Unmarshal(b, &resp); err != nil {
			return wire.Response{}, err
		}
		if resp.Event == "" && resp.ID == r.ID {
			return resp, nil
		}
	}
}

func (s *rawSession) close() { s.ws.Close() }

// vanishCycle opens a session with a short timeout, creates an ephemeral,
// and drops the connection without a close, as a killed client would; half
// its timeout later it looks for the ephemeral, which must still be there.
func (w *worker) vanishCycle(ctx context.Context) {
	addr := w.addrs[w.rng.Intn(len(w.addrs))]
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	s, err := rawDial(octx, addr)
	if err != nil {
		return
	}
	hello := time.Now()
	h, err := s.call(octx, wire.Request{Op: wire.OpHello, TimeoutMs: vanishTimeoutMs})
	if err != nil || !h.OK {
		s.close()
		return
	}
	path := fmt.Sprintf("%s/v%d-%d", ephParent, w.id, w.seq)
	w.seq++
	r, err := s.call(octx, wire.Request{Op: wire.OpCreate, Path: path, Ephemeral: true})
	s.close() // vanish, with or without the node
	if err != nil || !r.OK {
		return // its outcome is unknown: not worth tracking
	}
	w.log.Abandon(lincheck.Abandoned{Session: h.Session, Secret: h.Secret,
		Timeout: time.Duration(h.TimeoutMs) * time.Millisecond, Hello: hello, Path: path, Created: time.Now()})
	sleepUntil(ctx, hello.Add(time.Duration(h.TimeoutMs)*time.Millisecond/2))
	w.sight(ctx, h.Session, path)
}

// sight records a linearizable exists of an abandoned session's ephemeral,
// through a random member.
func (w *worker) sight(ctx context.Context, session, path string) {
	sightOn(ctx, w.addrs[w.rng.Intn(len(w.addrs))], w.log, session, path)
}

// sightOn is sight through the member at addr.
func sightOn(ctx context.Context, addr string, l *lincheck.SessionLog, session, path string) {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	s, err := rawDial(octx, addr)
	if err != nil {
		return
	}
	defer s.close()
	if h, err := s.call(octx, wire.Request{Op: wire.OpHello, TimeoutMs: 5000}); err != nil || !h.OK {
		return
	}
	call := time.Now()
	r, err := s.call(octx, wire.Request{Op: wire.OpExists, Path: path})
	if err != nil || !r.OK {
		return
	}
	l.Sight(lincheck.Sighting{Session: session, Call: call, Return: time.Now(), Exists: r.Stat.Stat != nil})
	_, _ = s.call(octx, wire.Request{Op: wire.OpClose})
}

// probe resumes an abandoned session somewhere (and drops it again), then
// looks for its ephemeral.
func (w *worker) probe(ctx context.Context) {
	a, ok := w.log.Random(w.rng.Intn)
	if !ok {
		return
	}
	if p, ok := resumeProbe(ctx, w.addrs[w.rng.Intn(len(w.addrs))], a); ok {
		w.log.Probe(p)
	}
	w.sight(ctx, a.Session, a.Path)
}

// resumeProbe tries to resume a; ok is false when the answer said neither
// alive nor expired (no leader, timeout, a broken connection).
func resumeProbe(ctx context.Context, addr string, a lincheck.Abandoned) (lincheck.Probe, bool) {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	s, err := rawDial(octx, addr)
	if err != nil {
		return lincheck.Probe{}, false
	}
	defer s.close()
	p := lincheck.Probe{Session: a.Session, Call: time.Now()}
	r, err := s.call(octx, wire.Request{Op: wire.OpHello, Session: a.Session, Secret: a.Secret})
	p.Return = time.Now()
	switch {
	case err != nil:
		return p, false
	case r.OK:
		p.Alive = true
	case r.Error != nil && r.Error.Code == wire.CodeSessionExpired:
	default:
		return p, false
	}
	return p, true
}

// checkAbandonedGone waits, after healing, until every abandoned session's
// ephemeral is gone (reads do not renew the session; resumes would), then
// checks that a resume of it answers SESSION_EXPIRED: expiry must happen,
// not just never early.
func checkAbandonedGone(ctx context.Context, addrs []string, l *lincheck.SessionLog) []error {
	var errs []error
	for _, a := range l.Sessions() {
		deadline := time.Now().Add(a.Timeout + 10*time.Second)
		for i := 0; ; i++ {
			if gone, ok := ephemeralGone(ctx, addrs[i%len(addrs)], a.Path); ok && gone {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				errs = append(errs, fmt.Errorf("%w: ephemeral %s of abandoned session %s still there %v after healing (timeout %v)",
					lincheck.ErrViolation, a.Path, a.Session, a.Timeout+10*time.Second, a.Timeout))
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for i := range 20 {
			if p, ok := resumeProbe(ctx, addrs[i%len(addrs)], a); ok {
				l.Probe(p)
				if p.Alive {
					errs = append(errs, fmt.Errorf("%w: session %s resumed after healing although its ephemeral is gone",
						lincheck.ErrViolation, a.Session))
				}
				break
			}
		}
	}
	return errs
}

// ephemeralGone reads path linearizably on addr; ok is false when the read
// failed.
func ephemeralGone(ctx context.Context, addr, path string) (gone, ok bool) {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	s, err := rawDial(octx, addr)
	if err != nil {
		return false, false
	}
	defer s.close()
	if h, err := s.call(octx, wire.Request{Op: wire.OpHello, TimeoutMs: 5000}); err != nil || !h.OK {
		return false, false
	}
	r, err := s.call(octx, wire.Request{Op: wire.OpExists, Path: path})
	if err != nil || !r.OK {
		return false, false
	}
	_, _ = s.call(octx, wire.Request{Op: wire.OpClose})
	return r.Stat.Stat == nil, true
}
