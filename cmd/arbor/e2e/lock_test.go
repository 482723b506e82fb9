package e2e

import (
	"testing"
	"time"
)

// holderTimeout is the session timeout of the arbor lock and arbor elect
// processes: short, so that expiries come quickly.
const holderTimeout = 3 * time.Second

// The earliest a killed or cut-off holder's session can expire: the holder
// pings every third of its timeout, so the cluster heard from it at most
// T/3 before, and expires it no sooner than T after that.
const minExpiry = holderTimeout - holderTimeout/3

// maxExpiry bounds how late the expiry of a silent session comes: its
// timeout, plus the leader's reaping interval, a commit and slack for a
// loaded machine.
const maxExpiry = holderTimeout + 5*time.Second

func (c *cluster) addr(i int) string { return c.members[i].clientAddr }

// awaitGrant waits up to within for the contender's grant, failing the
// test on an error or none.
func awaitGrant(t *testing.T, ch <-chan granted, within time.Duration, since time.Time) granted {
	t.Helper()
	select {
	case g := <-ch:
		if g.err != nil {
			t.Fatalf("the contender's Lock failed %v after: %v", g.at.Sub(since), g.err)
		}
		return g
	case <-time.After(within):
		t.Fatalf("the contender was not granted the lock within %v", within)
	}
	return granted{}
}

// checkExpiryBounds fails the test unless the grant at came after the
// holder's session can have expired, and not much later: at least its
// timeout after heard (the cluster heard from it no earlier than that), at
// least minExpiry after from (its kill or cut), at most maxExpiry after.
func checkExpiryBounds(t *testing.T, what string, from, heard, at time.Time) {
	t.Helper()
	d := at.Sub(from)
	t.Logf("%s %v after, %v after the holder was last heard", what, d.Round(time.Millisecond), at.Sub(heard).Round(time.Millisecond))
	if at.Sub(heard) < holderTimeout {
		t.Errorf("%s within the holder's session timeout %v of when it was last heard", what, holderTimeout)
	}
	if d < minExpiry {
		t.Errorf("%s before the holder's session (timeout %v) can have expired (%v at the earliest)", what, holderTimeout, minExpiry)
	}
	if d > maxExpiry {
		t.Errorf("%s later than %v", what, maxExpiry)
	}
}

// killBeforePing kills the holder, which talks to the cluster through p,
// just before its next ping is due, so that the cluster last heard from it
// about a third of its timeout before the kill: the kill that leaves the
// least time before its session may expire. It returns the kill's time and
// when the cluster last heard from the holder, at the earliest.
func killBeforePing(t *testing.T, h *holder, p *proxy) (killed, heard time.Time) {
	t.Helper()
	before := p.lastSent()
	deadline := time.Now().Add(holderTimeout)
	for p.lastSent().Equal(before) {
		if time.Now().After(deadline) {
			t.Fatalf("the holder sent nothing for %v", holderTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A ping went: the next is due a third of the timeout after it.
	time.Sleep(time.Until(p.lastSent().Add(holderTimeout/3 - 100*time.Millisecond)))
	killed = h.kill9()
	return killed, p.lastSent()
}

// A lock holder killed with kill -9 keeps the lock until its session
// expires: the contender waiting on another member is granted it no sooner
// than the expiry can come, soon after, and with a higher fencing token.
func TestLockOfKilledHolderGoesToNextAfterExpiry(t *testing.T) {
	c := startCluster(t, 3)
	p := startProxy(t, c.addr(0)) // to see when the holder was last heard
	h := startHolder(t, "ARBOR_LOCK_TOKEN", "lock", "--session-timeout", holderTimeout.String(),
		"--endpoints", p.addr(), "/l")
	cl := dialContender(t, c.addr(1))
	grant := lockAsync(t, cl, "/l")
	waitQueued(t, cl, "/l", 2)
	heldBy(t, cl, "/l", h.session)

	killed, heard := killBeforePing(t, h, p)
	g := awaitGrant(t, grant, maxExpiry+2*time.Second, killed)
	checkExpiryBounds(t, "granted", killed, heard, g.at)
	if g.grant.Token <= h.token {
		t.Errorf("the contender's token %d is not above the killed holder's %d", g.grant.Token, h.token)
	}
}
