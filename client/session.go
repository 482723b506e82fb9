package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// State is the state of a Client's session, as reported by State and
// States.
type State uint8

// States of a session. A Client starts Connected. Jeopardy takes precedence
// over the connection's own state: while the session deadline has passed,
// the client reports Jeopardy whether it is connected or not, until a ping
// confirms a renewal again (then Connected on the connection Dial opened,
// Resumed on a later one, as if Jeopardy had not happened). Expired and
// Closed are final, except that Closed follows Expired once Close is called.
const (
	// Connected: on the connection Dial opened, with the session deadline
	// ahead.
	Connected State = iota + 1
	// Disconnected: the connection broke; the client is resuming the
	// session on the endpoints in turn. Calls wait for it.
	Disconnected
	// Resumed: the session was resumed on a new connection (or a renewal
	// was confirmed again after Jeopardy) and the deadline is ahead.
	Resumed
	// Jeopardy: the session deadline has passed: the cluster may have
	// expired the session, so whatever it guards (locks, leadership,
	// ephemeral nodes) may belong to someone else now. Context is
	// cancelled. Calls are still sent.
	Jeopardy
	// Expired: the cluster expired the session (or refused to resume it).
	// Every call fails with ErrSessionExpired; Dial again for a new one.
	Expired
	// Closed: Close was called. The States channel is closed after it.
	Closed
)

func (s State) String() string {
	switch s {
	case Connected:
		return "Connected"
	case Disconnected:
		return "Disconnected"
	case Resumed:
		return "Resumed"
	case Jeopardy:
		return "Jeopardy"
	case Expired:
		return "Expired"
	case Closed:
		return "Closed"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// StateBuffer is how many state changes the States channel holds for a
// reader that falls behind.
const StateBuffer = 1024

// States returns the channel on which every change of State is reported,
// exactly once and in order, starting with Connected. The client never
// blocks on it: it buffers StateBuffer changes, and past that drops the
// oldest one waiting (and logs a warning), so a reader that falls that far
// behind still sees the latest state; State is always current. The channel
// is closed after Closed. Every call returns the same channel: with several
// readers, each change goes to one of them.
func (c *Client) States() <-chan State { return c.states }

// State returns the current state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Context returns a context that is cancelled when the session enters
// Jeopardy, expires, or the client is closed; context.Cause says which
// (ErrJeopardy, ErrSessionExpired, ErrClosed). It is what a lock holder or a
// leader hands to its work so that it stops acting in time: before the
// cluster can have expired the session. Once a renewal is confirmed again
// after Jeopardy, Context returns a fresh context; the old one stays
// cancelled.
func (c *Client) Context() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessCtx
}

// Deadline returns the session deadline: the time before which the cluster
// cannot have expired the session (the package documentation says how the
// client knows), on this process's monotonic clock. Context is cancelled
// once it passes. Work about to act on what the session guards can check
// that enough of it is left: a process can be scheduled late, and a
// cancellation seen late is no better than none.
func (c *Client) Deadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline
}

// setStateLocked reports the state derived from the fields it reads, if it
// changed. c.mu is held, which keeps reports in order.
func (c *Client) setStateLocked() {
	var s State
	switch {
	case c.closed:
		s = Closed
	case c.over != nil:
		s = Expired
	case c.jeopardy:
		s = Jeopardy
	case c.cur == nil && c.closing:
		// The member hangs up once it has answered close, and Closed
		// follows at once: no Disconnected in between.
		return
	case c.cur == nil:
		s = Disconnected
	case c.cur.resumed:
		s = Resumed
	default:
		s = Connected
	}
	if s == c.state {
		return
	}
	c.state = s
	select {
	case c.states <- s:
		return
	default:
	}
	select {
	case <-c.states: // the oldest change waiting
	default:
	}
	c.states <- s // only senders hold c.mu, and one slot is free
	c.log.Warn("arbor: States channel full, dropped the oldest state", "session", c.session)
}

// The session deadline. The client keeps, on its monotonic clock, a time
// before which the cluster cannot have expired the session: at Dial, the
// time the hello was sent plus the timeout; then, for every ping answer
// that carries renewed_ago_ms, the time that ping was sent, minus
// renewed_ago_ms, plus the timeout (the leader's own deadline is at least
// that late; see wire.Response.RenewedAgoMs). Nothing else moves it: not
// other answers, not a resume. Each estimate is shortened by sessionMargin.

// sessionMargin allows for the client's and the leader's clocks running at
// slightly different rates, and for the client to be scheduled late: 2% of
// the timeout, and never less than 50ms.
func sessionMargin(timeout time.Duration) time.Duration {
	return max(50*time.Millisecond, timeout/50)
}

// staleRenewal: a ping answered with renewed_ago_ms above this means the
// member has stopped getting renewals confirmed, though the client pings
// every timeout/3. The client then moves to another member while about half
// the timeout is left, time to resume and be renewed there.
func staleRenewal(timeout time.Duration) time.Duration {
	return timeout/3 + min(time.Second, timeout/6)
}

// After a resume the member may not have a confirmed renewal of the session
// yet: the client pings quickly a few times until one is, then falls back to
// every timeout/3.
const (
	quickPings        = 5
	quickPingInterval = 100 * time.Millisecond
)

// enterJeopardy runs on deadlineT. The timer is not moved on every
// renewal: when it fires before the deadline it is set again for it.
func (c *Client) enterJeopardy() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jeopardy || c.over != nil {
		return // a renewal sets the timer again; expiry and Close stop it
	}
	if until := time.Until(c.deadline); until > 0 {
		c.deadlineT.Reset(until)
		return
	}
	c.jeopardy = true
	c.sessStop(ErrJeopardy)
	c.setStateLocked()
	c.log.Warn("arbor: session in jeopardy", "session", c.session, "deadline", c.deadline)
}

// renewed moves the deadline with a ping answer sent at sentAt, and reports
// whether the answer confirmed a renewal.
func (c *Client) renewed(cn *conn, sentAt time.Time, resp *wire.Response) bool {
	if resp.RenewedAgoMs == nil {
		return false
	}
	// Whole milliseconds, maybe rounded down: count the one that may be
	// missing.
	ago := time.Duration(max(0, *resp.RenewedAgoMs)+1) * time.Millisecond
	deadline := sentAt.Add(c.timeout - c.margin - ago)
	c.mu.Lock()
	if deadline.After(c.deadline) {
		c.deadline = deadline // deadlineT, due earlier, looks again then
	}
	if c.jeopardy && c.over == nil && time.Now().Before(c.deadline) {
		c.jeopardy = false
		c.sessCtx, c.sessStop = context.WithCancelCause(context.Background())
		c.deadlineT.Reset(time.Until(c.deadline))
		c.setStateLocked()
	}
	c.mu.Unlock()
	if ago > staleRenewal(c.timeout) {
		c.breakConn(cn, &Error{Code: CodeConnectionLost, Index: -1,
			Message: fmt.Sprintf("member %s last renewed the session %v ago", cn.server, ago)})
	}
	return true
}

// pingResult is what the reader tells the writer of its ping's answer.
type pingResult struct {
	sentAt    time.Time
	confirmed bool // the answer confirmed a renewal
}

// pingCall registers a ping on cn, sent at sentAt, for the writer to
// send; false when cn is broken.
func (c *Client) pingCall(cn *conn, sentAt time.Time) (*call, bool) {
	cl := &call{op: wire.OpPing, id: c.nextID.Add(1)}
	cl.frame = fmt.Appendf(nil, `{"id":%d,"op":%q}`, cl.id, wire.OpPing)
	cl.done = func(resp *wire.Response, err *Error) { c.pingAnswered(cn, sentAt, resp, err) }
	c.mu.Lock()
	defer c.mu.Unlock()
	if cn.pending == nil {
		return nil, false
	}
	cn.pending[cl.id] = cl
	return cl, true
}

// pingAnswered handles, on the reader goroutine, the answer to the ping
// the writer sent on cn at sentAt. An answer UNAVAILABLE (the member
// cannot renew sessions) breaks cn so that the client moves to another
// member; any other outcome goes back to the writer, which pings again.
func (c *Client) pingAnswered(cn *conn, sentAt time.Time, resp *wire.Response, err *Error) {
	confirmed := false
	switch {
	case err == nil:
		c.membersChanged(resp.MembersHash)
		confirmed = c.renewed(cn, sentAt, resp)
	case errors.Is(err, ErrUnavailable):
		c.breakConn(cn, &Error{Code: CodeConnectionLost, Index: -1, cause: err,
			Message: "member " + cn.server + " cannot renew sessions: " + err.Error()})
		return
	default:
		c.log.Debug("arbor: ping failed", "session", c.session, "err", err)
	}
	select {
	case cn.pinged <- pingResult{sentAt: sentAt, confirmed: confirmed}:
	default: // one ping at a time: never full
	}
}
