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

func (c *Client) numEndpoints() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.eps)
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
		if resp.MembersHash != 0 {
			c.membersHash.Store(resp.MembersHash)
		}
		c.learn(resp.Members)
	}()
}

// membersChanged asks for the members again when a ping says their set
// is not the one the client last learned (members join and leave while a
// session lives).
func (c *Client) membersChanged(hash uint64) {
	if hash == 0 || c.membersHash.Swap(hash) == hash {
		return
	}
	c.mu.Lock()
	c.discover()
	c.mu.Unlock()
}

// learn adds the client addresses of ms that the client does not know yet.
// A member that left stays listed: failing over to it costs one failed
// attempt, and it may come back.
func (c *Client) learn(ms []wire.Member) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
