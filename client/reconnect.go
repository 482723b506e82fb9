package client

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// supervise runs one connection after another for the session's life:
// it serves cn until cn breaks, then resumes the session on a new one. It
// returns once the session expires or the client is closed.
func (c *Client) supervise(cn *conn) {
	var prev *conn
	for cn != nil {
		c.serve(cn, prev)
		next := c.reconnect(cn.index)
		if next == nil {
			c.endWatches(cn)
		}
		prev, cn = cn, next
	}
}

// serve runs the reader and writer of cn and returns when both have
// stopped, which they do once cn breaks. After a resume it also
// registers again the watches of prev, the connection before.
func (c *Client) serve(cn, prev *conn) {
	var wg sync.WaitGroup
	wg.Go(func() { c.readLoop(cn) })
	wg.Go(func() { c.writeLoop(cn) })
	if prev != nil {
		wg.Go(func() { c.rewatch(prev, cn) })
	}
	wg.Wait()
}

// endWatches ends the watches left on cn, the last connection of a
// session that is over, with the reason calls fail.
func (c *Client) endWatches(cn *conn) {
	c.mu.Lock()
	ws := cn.orphans
	cn.orphans = nil
	reason := error(ErrClosed)
	if c.over != nil {
		e := *c.over
		reason = &e
	}
	c.mu.Unlock()
	for _, w := range ws {
		w.fail(reason)
	}
}

// reconnect resumes the session on the endpoints in failoverOrder after
// losing endpoint from, round after round, with jittered exponential
// backoff before every attempt. It returns the new live connection, or nil
// when the client must stop: closed, or the session is gone
// (SESSION_EXPIRED or AUTH_FAILED on resume would be answered by every
// member alike).
func (c *Client) reconnect(from int) *conn {
	backoff := c.cfg.ReconnectBackoff
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var order []int
	for {
		if c.stopping() {
			return nil
		}
		t.Reset(jitter(backoff))
		select {
		case <-t.C:
		case <-c.run.Done():
			return nil
		}
		if len(order) == 0 {
			order = c.failoverOrder(from) // again each round: members come and go
		}
		i := order[0]
		order = order[1:]
		cn, _, _, err := c.open(c.run, i, true)
		if err == nil {
			if !c.adopt(cn) {
				cn.ws.Close()
				return nil
			}
			return cn
		}
		var e *Error
		if errors.As(err, &e) && (e.Code == wire.CodeSessionExpired || e.Code == wire.CodeAuthFailed) {
			c.expire(&Error{Code: wire.CodeSessionExpired, Index: -1, cause: e,
				Message: "session " + c.session + " cannot be resumed: " + e.Error()})
			return nil
		}
		c.log.Debug("arbor: resume failed", "endpoint", c.endpoint(i), "session", c.session, "err", err)
		backoff = min(2*backoff, c.cfg.MaxReconnectBackoff)
	}
}

// jitter spreads d over [d/2, 3d/2).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

func (c *Client) stopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing || c.over != nil
}

// adopt makes cn the live connection, unless the client stopped meanwhile.
func (c *Client) adopt(cn *conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.over != nil {
		return false
	}
	c.cur, c.server = cn, cn.server
	close(c.up)
	c.setStateLocked()
	c.log.Info("arbor: session resumed", "endpoint", cn.endpoint, "server", cn.server, "session", c.session)
	c.discover()
	return true
}
