package e2e

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/recipe"
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

func (c *cluster) addr(i int) string { return c.Members[i].ClientAddr }

// endpoints lists every member's address, first's first.
func (c *cluster) endpoints(first int) []string {
	eps := []string{c.addr(first)}
	for i := range c.Members {
		if i != first {
			eps = append(eps, c.addr(i))
		}
	}
	return eps
}

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

// sessionsConnected reads member i's arbor_sessions_connected gauge.
func (c *cluster) sessionsConnected(ctx context.Context, i int) (int, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.addr(i)+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "arbor_sessions_connected "); ok {
			n, err := strconv.ParseFloat(v, 64)
			return int(n), err
		}
	}
	return 0, fmt.Errorf("no arbor_sessions_connected in the metrics of %s (%v)", c.Members[i].Name, sc.Err())
}

// waitSessionsConnected polls until the members named have n sessions
// connected between them.
func (c *cluster) waitSessionsConnected(t *testing.T, n int, members ...int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sum, err := 0, error(nil)
		for _, i := range members {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			k, kerr := c.sessionsConnected(ctx, i)
			cancel()
			sum, err = sum+k, cmp.Or(err, kerr)
		}
		if err == nil && sum == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("members %v have %d sessions connected (%v), want %d", members, sum, err, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A lock holder killed with kill -9 keeps the lock until its session
// expires: the contender waiting on another member is granted it no sooner
// than the expiry can come, soon after, and with a higher fencing token.
func TestLockOfKilledHolderGoesToNextAfterExpiry(t *testing.T) {
	c := startCluster(t, 3)
	p := startProxy(t, c.addr(0)) // to see when the holder was last heard
	h := startHolder(t, "ARBOR_LOCK_TOKEN", "lock", "--session-timeout", holderTimeout.String(),
		"--no-discovery", "--endpoints", p.addr(), "/l") // the proxy is its only way in
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

// A lock holder keeps its lock through kill -9 of the member it is connected
// to, or of the leader: its client resumes the session elsewhere, its
// command keeps running, and the contender waits for as long as the holder
// lives; once the holder is interrupted, the contender is granted at once.
func TestLockHolderKeepsLockThroughMemberKill(t *testing.T) {
	for _, tc := range []struct {
		name string
		// holder and victim say which member the holder is connected to
		// and which is killed, as the leader or its followers.
		holder, victim string
	}{
		{"its follower", "follower", "follower"},
		{"the leader, holder on a follower", "follower", "leader"},
		{"its member the leader", "leader", "leader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, 3)
			lead := c.findLeader(10 * time.Second)
			at := map[string]int{"leader": lead, "follower": (lead + 1) % 3}
			holderAt, victim := at[tc.holder], at[tc.victim]
			contenderAt := (lead + 2) % 3 // a follower that survives
			holdThroughKill(t, c, holderAt, victim, contenderAt)
		})
	}
}

func holdThroughKill(t *testing.T, c *cluster, holderAt, victim, contenderAt int) {
	h := startHolder(t, "ARBOR_LOCK_TOKEN", "lock", "--session-timeout", holderTimeout.String(),
		"--endpoints", c.addr(holderAt), "/l") // one endpoint: there (it learns the others)
	cl := dialContender(t, c.endpoints(contenderAt)...)
	grant := lockAsync(t, cl, "/l")
	waitQueued(t, cl, "/l", 2)
	c.waitSessionsConnected(t, 1, holderAt) // the holder, where it was sent

	c.Kill(victim)
	killed := time.Now()
	// Twice the holder's timeout: long past when its session would have
	// expired had its client not resumed it on another member.
	timer := time.NewTimer(2 * holderTimeout)
	defer timer.Stop()
	select {
	case g := <-grant:
		t.Fatalf("the contender got %+v (err %v) %v after the kill of %s, while the holder lives; holder stderr %q",
			g.grant, g.err, g.at.Sub(killed), c.Members[victim].Name, h.stderr.String())
	case <-h.exited:
		t.Fatalf("the holder exited %v after the kill of %s; stderr %q", time.Since(killed), c.Members[victim].Name, h.stderr.String())
	case <-timer.C:
	}
	if s := h.stderr.String(); s != "" {
		t.Fatalf("the holder says %q", s)
	}
	var survivors []int
	for i := range c.Members {
		if i != victim {
			survivors = append(survivors, i)
		}
	}
	c.waitSessionsConnected(t, 2, survivors...) // the holder and the contender
	heldBy(t, cl, "/l", h.session)

	stopped := h.interrupt()
	// Promptly: sooner than an expiry could come (the holder pinged until
	// the interrupt), so through arbor's own release.
	g := awaitGrant(t, grant, minExpiry, stopped)
	t.Logf("granted %v after the holder's interrupt", g.at.Sub(stopped).Round(time.Millisecond))
	if g.grant.Token <= h.token {
		t.Errorf("the contender's token %d is not above the holder's %d", g.grant.Token, h.token)
	}
	// SIGINT stops the command with SIGTERM, and arbor exits with its
	// status, as a shell would give it.
	if code := h.wait(10 * time.Second); code != 128+int(syscall.SIGTERM) {
		t.Errorf("the interrupted holder exited %d, want %d; stderr %q", code, 128+int(syscall.SIGTERM), h.stderr.String())
	}
	if s := h.stderr.String(); s != "" {
		t.Errorf("the interrupted holder says %q", s)
	}
}

// A holder cut off from the cluster (a black hole between it and its member)
// learns that its lock may be lost, stops its command and says so, before
// the cluster expires its session and grants the lock to the next.
func TestCutOffHolderKnowsLockIsLostBeforeNextIsGranted(t *testing.T) {
	c := startCluster(t, 3)
	p := startProxy(t, c.addr(0))
	h := startHolder(t, "ARBOR_LOCK_TOKEN", "lock", "--session-timeout", holderTimeout.String(),
		"--no-discovery", "--endpoints", p.addr(), "/l") // the proxy is its only way in
	cl := dialContender(t, c.addr(1))
	grant := lockAsync(t, cl, "/l")
	waitQueued(t, cl, "/l", 2)
	heldBy(t, cl, "/l", h.session)

	p.blackhole()
	cut := time.Now()
	g := awaitGrant(t, grant, maxExpiry+2*time.Second, cut)
	checkExpiryBounds(t, "granted", cut, p.lastSent(), g.at)
	lost, err := h.stderr.find("the lock /l is lost", 0)
	if err != nil {
		t.Fatalf("the contender was granted the lock %v after the cut, and the holder had not said it lost it: %v",
			g.at.Sub(cut), err)
	}
	t.Logf("the holder said %q %v after the cut", lost.text, lost.at.Sub(cut).Round(time.Millisecond))
	if !lost.at.Before(g.at) {
		t.Errorf("the holder said the lock was lost %v after the cut, the contender was granted it %v after",
			lost.at.Sub(cut), g.at.Sub(cut))
	}
	if g.grant.Token <= h.token {
		t.Errorf("the contender's token %d is not above the cut-off holder's %d", g.grant.Token, h.token)
	}
	if code := h.wait(15 * time.Second); code != 1 {
		t.Errorf("the cut-off holder exited %d, want 1", code)
	}
	// arbor waits for its command to end before it exits.
	if err := syscall.Kill(h.cmdPid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the cut-off holder's command (pid %d) after arbor's exit: %v, want it gone", h.cmdPid, err)
	}
}

// observe collects el's reports in the background, so that a test that
// does not read at once does not hold Observe back. stop ends Observe and
// returns the reports not read yet; it is called at the end of the test
// too.
func observe(t *testing.T, el *recipe.Election) (reports <-chan client.LeaderInfo, stop func() []client.LeaderInfo) {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan client.LeaderInfo, 16)
	go func() {
		defer close(out)
		for l := range el.Observe(ctx) {
			out <- l
		}
	}()
	stop = func() []client.LeaderInfo {
		cancel()
		var rest []client.LeaderInfo
		for l := range out {
			rest = append(rest, l)
		}
		return rest
	}
	t.Cleanup(func() { stop() })
	return out, stop
}

func nextReport(t *testing.T, reports <-chan client.LeaderInfo, within time.Duration) client.LeaderInfo {
	t.Helper()
	select {
	case l, ok := <-reports:
		if !ok {
			t.Fatal("Observe ended early")
		}
		return l
	case <-time.After(within):
		t.Fatalf("Observe reported nothing within %v", within)
	}
	return client.LeaderInfo{}
}

// An elected arbor process killed with kill -9 keeps the leadership until
// its session expires; then the next candidate is elected, arbor leader
// shows it, and Observe has reported each leader once.
func TestElectionFailsOverFromKilledLeader(t *testing.T) {
	c := startCluster(t, 3)
	p := startProxy(t, c.addr(0)) // to see when the leader was last heard
	h := startHolder(t, "ARBOR_ELECTION_TOKEN", "elect", "--session-timeout", holderTimeout.String(),
		"--no-discovery", "--endpoints", p.addr(), "/svc", "host-a") // the proxy is its only way in
	cl := dialContender(t, c.addr(1))
	reports, stopObserving := observe(t, recipe.NewElection(cl, "/svc"))
	if l := nextReport(t, reports, 10*time.Second); string(l.Value) != "host-a" || l.Token != h.token || l.Session != h.session {
		t.Fatalf("Observe first reported %+v, want host-a with token %d, session %s", l, h.token, h.session)
	}

	el := recipe.NewElection(cl, "/svc")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	elected := make(chan granted, 1) // only err and at
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := el.Campaign(ctx, []byte("host-b"))
		elected <- granted{err: err, at: time.Now()}
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitQueued(t, cl, "/svc", 2)

	killed, heard := killBeforePing(t, h, p)
	var at time.Time
	select {
	case g := <-elected:
		if g.err != nil {
			t.Fatalf("Campaign: %v", g.err)
		}
		at = g.at
	case <-time.After(maxExpiry + 2*time.Second):
		t.Fatalf("the next candidate was not elected within %v of the kill", maxExpiry+2*time.Second)
	}
	checkExpiryBounds(t, "elected", killed, heard, at)
	if el.Token() <= h.token {
		t.Errorf("the new leader's token %d is not above the killed leader's %d", el.Token(), h.token)
	}
	if l := nextReport(t, reports, 5*time.Second); string(l.Value) != "host-b" || l.Token != el.Token() || l.Session != cl.Session() {
		t.Errorf("Observe then reported %+v, want host-b with token %d, session %s", l, el.Token(), cl.Session())
	}

	// arbor leader, on a third member.
	lctx, lcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer lcancel()
	out, err := exec.CommandContext(lctx, binary, "leader", "--endpoints", c.addr(2), "/svc").CombinedOutput()
	want := fmt.Sprintf("host-b (session %s, token %d)\n", cl.Session(), el.Token())
	if err != nil || string(out) != want {
		t.Errorf("arbor leader: %q, %v; want %q", out, err, want)
	}

	for _, l := range stopObserving() {
		t.Errorf("Observe reported %+v again", l)
	}
	if err := el.Resign(ctx); err != nil {
		t.Errorf("Resign: %v", err)
	}
}
