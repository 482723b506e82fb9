package client

import (
	"context"
	"slices"

	"github.com/arbor-db/arbor/client/wire"
)

// endpoint returns endpoint i: Config.Endpoints first, then the client
// addresses learned from the members op.
func (c *Client) endpoint(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.eps[i%len(c.eps)]
}

// Endpoints returns the endpoints the client fails over to: those it was
// given, then the members it learned of.
func (c *Client) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.eps)
}

// discover asks, in the background, for the cluster's members and adds
// their client addresses to the endpoints. Called with mu held, on a live
// connection; the client's WaitGroup owns the goroutine.
func (c *Client) discover() {
	if c.cfg.NoDiscovery || c.closing || c.over != nil {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.run, c.cfg.DialTimeout)
		defer cancel()
		resp, err := c.Do(ctx, &wire.Request{Op: wire.OpMembers})
		if err != nil {
			return // an older member, or a broken connection: the next resume asks again
		}
		if c.view != nil { // first: once Endpoints shows them, Dial uses them
			c.view.update(resp.Members, resp.MembersHash)
		}
		c.learn(resp.Members, resp.MembersHash)
	}()
}

// membersChanged asks for the members again when a ping says their set
// is not the one the client last learned (members join and leave while a
// session lives); when it is, the ping confirms the process's view.
func (c *Client) membersChanged(hash uint64) {
	if hash == 0 {
		return
	}
	if c.membersHash.Swap(hash) == hash {
		if c.view != nil {
			c.view.confirm(hash)
		}
		return
	}
	c.mu.Lock()
	c.discover()
	c.mu.Unlock()
}

// learn records a members answer (ms, with its members_hash) and adds the
// client addresses of ms that the client does not know yet. A member that
// left stays listed: failing over to it costs one failed attempt, and it
// may come back.
func (c *Client) learn(ms []wire.Member, hash uint64) {
	if hash != 0 {
		c.membersHash.Store(hash)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members = slices.Clone(ms)
	for _, m := range ms {
		if m.ClientURL == "" || slices.Contains(c.eps, m.ClientURL) {
			continue
		}
		if c.cfg.NetDialContext == nil && checkEndpoint(m.ClientURL) != nil {
			continue
		}
		c.eps = append(c.eps, m.ClientURL)
		c.log.Debug("arbor: learned a member", "endpoint", m.ClientURL, "member", m.Name)
	}
}

// failoverOrder returns the order in which a reconnect after losing
// endpoint from tries the endpoints (spread.go).
func (c *Client) failoverOrder(from int) []int {
	c.mu.Lock()
	eps, live := slices.Clone(c.eps), liveMembers(c.members)
	c.mu.Unlock()
	return failoverOrder(eps, live, from, c.cfg.InOrder)
}
