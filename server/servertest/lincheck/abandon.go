package lincheck

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
)

// Abandoner is the abandoned-session workload of the fault suites: sessions
// that create an ephemeral node and vanish without a close, as a killed
// client would, and later probes (resumes by secret, from any member) and
// sightings (linearizable reads of the ephemeral) that CheckExpiry judges.
// It speaks the wire protocol directly, since a vanishing client must not
// reconnect. Its methods are safe for concurrent use.
type Abandoner struct {
	Addrs     []string      // client addresses of the members
	Parent    string        // existing parent of the ephemerals
	TimeoutMs int64         // session timeout to ask for (the cluster's minimum)
	OpTimeout time.Duration // one request
	Log       *SessionLog
}

// rawSession is a bare protocol connection.
type rawSession struct {
	ws *websocket.Conn
	id uint64
}

func rawDial(ctx context.Context, addr string) (*rawSession, error) {
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}}
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

// Cycle opens a session on a member picked by pick, creates an ephemeral
// named after name, drops the connection without a close, and half the
// session timeout later looks for the ephemeral, which must still be there.
func (a *Abandoner) Cycle(ctx context.Context, pick func(n int) int, name string) {
	octx, cancel := context.WithTimeout(ctx, a.OpTimeout)
	defer cancel()
	s, err := rawDial(octx, a.Addrs[pick(len(a.Addrs))])
	if err != nil {
		return
	}
	hello := time.Now()
	h, err := s.call(octx, wire.Request{Op: wire.OpHello, TimeoutMs: a.TimeoutMs})
	if err != nil || !h.OK {
		s.close()
		return
	}
	path := a.Parent + "/" + name
	r, err := s.call(octx, wire.Request{Op: wire.OpCreate, Path: path, Ephemeral: true})
	s.close() // vanish, with or without the node
	if err != nil || !r.OK {
		return // its outcome is unknown: not worth tracking
	}
	timeout := time.Duration(h.TimeoutMs) * time.Millisecond
	a.Log.Abandon(Abandoned{Session: h.Session, Secret: h.Secret, Timeout: timeout, Hello: hello, Path: path, Created: time.Now()})
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Until(hello.Add(timeout / 2))):
	}
	a.sight(ctx, a.Addrs[pick(len(a.Addrs))], h.Session, path)
}

// Probe resumes a random abandoned session on a member picked by pick (and
// drops it again), then looks for its ephemeral.
func (a *Abandoner) Probe(ctx context.Context, pick func(n int) int) {
	ab, ok := a.Log.Random(pick)
	if !ok {
		return
	}
	if p, ok := a.resume(ctx, a.Addrs[pick(len(a.Addrs))], ab); ok {
		a.Log.Probe(p)
	}
	a.sight(ctx, a.Addrs[pick(len(a.Addrs))], ab.Session, ab.Path)
}

// sight records a linearizable exists of an abandoned session's ephemeral.
func (a *Abandoner) sight(ctx context.Context, addr, session, path string) {
	call := time.Now()
	gone, ok := a.gone(ctx, addr, path)
	if ok {
		a.Log.Sight(Sighting{Session: session, Call: call, Return: time.Now(), Exists: !gone})
	}
}

// gone reads path linearizably on addr (in a session of its own, closed
// after); ok is false when the read failed.
func (a *Abandoner) gone(ctx context.Context, addr, path string) (gone, ok bool) {
	octx, cancel := context.WithTimeout(ctx, a.OpTimeout)
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

// resume tries to resume ab on addr; ok is false when the answer said
// neither alive nor expired (no leader, timeout, a broken connection).
func (a *Abandoner) resume(ctx context.Context, addr string, ab Abandoned) (Probe, bool) {
	octx, cancel := context.WithTimeout(ctx, a.OpTimeout)
	defer cancel()
	s, err := rawDial(octx, addr)
	if err != nil {
		return Probe{}, false
	}
	defer s.close()
	p := Probe{Session: ab.Session, Call: time.Now()}
	r, err := s.call(octx, wire.Request{Op: wire.OpHello, Session: ab.Session, Secret: ab.Secret})
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

// CheckGone runs after healing: it waits until every abandoned session's
// ephemeral is gone (reads do not renew the session; resumes would), then
// checks that a resume of it answers SESSION_EXPIRED. Expiry must happen,
// not just never early; a session still there after slack past its
// timeout is a violation.
func (a *Abandoner) CheckGone(ctx context.Context, slack time.Duration) []error {
	var errs []error
	for _, ab := range a.Log.Sessions() {
		deadline := time.Now().Add(ab.Timeout + slack)
		for i := 0; ; i++ {
			if gone, ok := a.gone(ctx, a.Addrs[i%len(a.Addrs)], ab.Path); ok && gone {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				errs = append(errs, fmt.Errorf("%w: ephemeral %s of abandoned session %s still there %v after healing (timeout %v)",
					ErrViolation, ab.Path, ab.Session, ab.Timeout+slack, ab.Timeout))
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for i := range 20 {
			if p, ok := a.resume(ctx, a.Addrs[i%len(a.Addrs)], ab); ok {
				a.Log.Probe(p)
				if p.Alive {
					errs = append(errs, fmt.Errorf("%w: session %s resumed after healing although its ephemeral is gone",
						ErrViolation, ab.Session))
				}
				break
			}
		}
	}
	return errs
}
