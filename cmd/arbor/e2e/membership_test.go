package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
)

// A one-member cluster grows to three and then five members by `arbor
// server --join` while a client writes, then shrinks back to three by
// `arbor member remove` (a follower, then the leader itself) while the
// client goes on writing. No acknowledged create is lost on any member;
// the client sees no error but retried disconnects; every member reports
// the same roles; removed members exit and say why; a removed name is
// refused when it tries to join again.
func TestMembershipGrowToFiveAndShrinkToThreeUnderWrites(t *testing.T) {
	c := startCluster(t, 1)
	w := startWriter(t, "a", c.Members[0].ClientAddr)
	w.waitMore(t, 50, 30*time.Second)

	start := time.Now()
	for _, name := range []string{"m2", "m3"} {
		c.join(name)
	}
	c.waitRoles("m1:leader:true m2:follower:true m3:follower:true", 90*time.Second)
	t.Logf("1 -> 3 members in %v (%d creates acknowledged so far)", time.Since(start).Round(time.Millisecond), w.count())
	w.waitMore(t, 50, 30*time.Second)

	start = time.Now()
	for _, name := range []string{"m4", "m5"} {
		c.join(name)
	}
	five := "m1:leader:true m2:follower:true m3:follower:true m4:follower:true m5:follower:true"
	c.waitRoles(five, 90*time.Second)
	t.Logf("3 -> 5 members in %v (%d creates acknowledged so far)", time.Since(start).Round(time.Millisecond), w.count())
	for i := range c.Members {
		c.waitReady(i, 30*time.Second)
	}
	w.waitMore(t, 50, 30*time.Second)
	// The first writer dialed a one-member cluster and learns members only
	// on open and resume (see TestMembershipClientLearnsJoinedMembers): it
	// stops here, and a second one, which learns all five when it opens,
	// writes through the removals.
	w.finish()
	for i := range c.Members {
		c.checkAcked(t, i, w.acked)
	}
	w2 := startWriter(t, "b", c.Members[0].ClientAddr)
	for deadline := time.Now().Add(10 * time.Second); len(w2.cl.Endpoints()) < 5; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a client opened on a five-member cluster knows %v", w2.cl.Endpoints())
		}
	}
	w2.waitMore(t, 50, 30*time.Second)

	// The CLI says the same as the members op, through any member.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, m := range c.Members {
		out, stderr, err := cli(ctx, "members", "--endpoints", m.ClientAddr)
		if err != nil {
			t.Fatalf("arbor members via %s: %v: %s", m.Name, err, stderr)
		}
		if got := cliRoles(out); got != five {
			t.Errorf("arbor members via %s: %q, want %q:\n%s", m.Name, got, five, out)
		}
	}

	// Shrink: a follower, then the leader itself, each through another
	// member (raft forwards the change).
	lead := c.findLeader(10 * time.Second)
	follower := (lead + 1) % len(c.Members)
	through := (lead + 2) % len(c.Members)
	c.removeByCLI(ctx, follower, through)
	c.checkRemovedExit(follower)
	w2.waitMore(t, 50, 30*time.Second)
	through = (lead + 3) % len(c.Members)
	leaderName := c.Members[lead].Name
	c.removeByCLI(ctx, lead, through)
	c.checkRemovedExit(lead)
	w2.waitMore(t, 100, 60*time.Second)

	var want []string
	for _, m := range c.Members {
		if m.Running() {
			want = append(want, m.Name)
		}
	}
	if len(want) != 3 {
		t.Fatalf("running members %v, want 3", want)
	}
	got := c.waitMembersNamed(want, 30*time.Second)
	t.Logf("after removing %s and the leader %s: %s", c.Members[follower].Name, leaderName, got)
	w2.waitMore(t, 50, 30*time.Second)
	w2.finish()

	for n, wr := range []*writer{w, w2} {
		t.Logf("writer %d: %d creates acknowledged, %d retried after an unknown outcome (%d of those found applied)",
			n+1, len(wr.acked), wr.indeterminate, wr.resolved)
		for _, err := range wr.failures {
			t.Errorf("writer %d saw an error other than a retried disconnect: %v", n+1, err)
		}
		for i, m := range c.Members {
			if m.Running() {
				c.checkAcked(t, i, wr.acked)
			}
		}
	}

	// The removed name joins again: added by hand first (under the id its
	// name gives, a member that never answers), then started with an
	// empty data dir and --join, whose incarnation takes that place.
	removed := c.Members[follower]
	if _, stderr, err := cli(ctx, "member", "add", removed.Name, "127.0.0.1:1", "--learner", "--endpoints", c.Members[c.findLeader(10*time.Second)].ClientAddr); err != nil {
		t.Errorf("arbor member add of the removed name %s: %v, stderr %q", removed.Name, err, stderr)
	}
	again := c.join(removed.Name)
	l := c.findLeader(10 * time.Second)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if got, err := c.roles(ctx, l); err == nil && strings.Contains(got, removed.Name+":follower:true") {
			t.Logf("%s joined again: %s", removed.Name, got)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the removed name %s did not join again with an empty data dir", removed.Name)
		}
	}
	c.removeByCLI(ctx, again, l)
	c.checkRemovedExit(again)
	c.waitMembersNamed(want, 30*time.Second)
}

// A client that opened on a one-member cluster learns the members that
// join it later, so that it can fail over to them when its member goes.
func TestMembershipClientLearnsJoinedMembers(t *testing.T) {
	c := startCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.Dial(ctx, client.Config{Endpoints: []string{c.Members[0].ClientAddr}, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close(ctx)
	c.join("m2")
	c.waitRoles("m1:leader:true m2:follower:true", 60*time.Second)
	for deadline := time.Now().Add(15 * time.Second); len(cl.Endpoints()) < 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("endpoints %v 15s after m2 joined: the client did not learn it", cl.Endpoints())
		}
	}
}

// cliRoles renders `arbor members` text output as renderRoles does.
func cliRoles(out string) string {
	var ms []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) == 5 {
			ms = append(ms, fmt.Sprintf("%s:%s:%s", f[0], f[3], f[4]))
		}
	}
	return strings.Join(ms, " ")
}

// removeByCLI removes member i with `arbor member remove` through member
// via.
func (c *cluster) removeByCLI(ctx context.Context, i, via int) {
	c.t.Helper()
	out, stderr, err := cli(ctx, "member", "remove", c.Members[i].Name, "--endpoints", c.Members[via].ClientAddr)
	if err != nil {
		c.t.Fatalf("arbor member remove %s via %s: %v: %s%s", c.Members[i].Name, c.Members[via].Name, err, out, stderr)
	}
	c.t.Logf("removed %s via %s: %s", c.Members[i].Name, c.Members[via].Name, strings.TrimSpace(out))
}

// checkRemovedExit checks that removed member i exits by itself, with a
// failing status and a line saying it was removed.
func (c *cluster) checkRemovedExit(i int) {
	c.t.Helper()
	err := c.waitExit(i, 30*time.Second)
	// The last line of the command itself (gossip may log after it).
	var said string
	for _, l := range strings.Split(c.logOf(i), "\n") {
		if strings.HasPrefix(l, "REMOVED: arbor server "+c.Members[i].Name+" was removed") {
			said = l
		}
	}
	c.t.Logf("%s exited: %v: %s", c.Members[i].Name, err, said)
	if err == nil {
		c.t.Errorf("%s exited with status 0 after its removal; want a failing status", c.Members[i].Name)
	}
	if !strings.Contains(said, "removed from the cluster") {
		c.t.Errorf("%s did not say it stopped because it was removed: %q", c.Members[i].Name, said)
	}
}

// waitMembersNamed waits until every running member reports exactly the
// members names, one leader and the rest followers, all alive, and
// returns that.
func (c *cluster) waitMembersNamed(names []string, within time.Duration) string {
	c.t.Helper()
	re := regexp.MustCompile(`:leader:true`)
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var first string
		same := true
		for i, m := range c.Members {
			if !m.Running() {
				continue
			}
			r, err := c.roles(ctx, i)
			if err != nil || (first != "" && r != first) {
				same = false
				break
			}
			first = r
		}
		cancel()
		if same && len(re.FindAllString(first, -1)) == 1 && strings.Count(first, ":follower:true") == len(names)-1 && len(strings.Fields(first)) == len(names) {
			return first
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("members %q within %v, want %v: one leader, the rest followers, all alive, the same on every member", first, within, names)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A learner started with --join --learner serves local reads and watches
// through its own client port, stays a learner, and takes no part in
// quorum: with one voter and the learner stopped, writes go on.
func TestMembershipLearnerServesReadsNotQuorum(t *testing.T) {
	c := startCluster(t, 1)
	li := c.join("m2", "--learner")
	c.waitRoles("m1:leader:true m2:learner:true", 60*time.Second)
	c.waitReady(li, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wc := dialPinned(t, ctx, c.Members[0].ClientAddr)
	lc := dialPinned(t, ctx, c.Members[li].ClientAddr)
	if lc.Server() != "m2" {
		t.Fatalf("pinned client on %s, want m2", lc.Server())
	}
	watcher, err := lc.Watch(ctx, "/cfg")
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close(ctx)
	if _, _, err := wc.Create(ctx, "/cfg", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-watcher.Events():
		if ev.Type != client.EventCreated {
			t.Fatalf("the learner's watch: %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the learner's watch saw no event")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		data, _, err := lc.Get(ctx, "/cfg", client.Local())
		if err == nil && string(data) == "v1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("local read on the learner: %q %v", data, err)
		}
	}
	// Several reconcile rounds: it asked to stay a learner.
	time.Sleep(3 * time.Second)
	c.waitRoles("m1:leader:true m2:learner:true", 5*time.Second)

	if err := c.stop(li); err != nil {
		t.Fatalf("stopping the learner: %v", err)
	}
	for i := range 20 {
		octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := wc.Set(octx, "/cfg", fmt.Appendf(nil, "after-%d", i), client.AnyVersion)
		ocancel()
		if err != nil {
			t.Fatalf("write %d with the learner stopped: %v", i, err)
		}
	}
	c.waitRoles("m1:leader:true m2:learner:false", 30*time.Second)
}

func dialPinned(t *testing.T, ctx context.Context, addr string) *client.Client {
	t.Helper()
	cl, err := client.Dial(ctx, client.Config{Endpoints: []string{addr}, NoDiscovery: true, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cl.Close(cctx)
	})
	return cl
}

// A member started with a different --gossip-key never joins, and the
// cluster's member logs the attempt.
func TestMembershipWrongGossipKeyCannotJoin(t *testing.T) {
	right := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 bytes
	wrong := "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	c := startCluster(t, 1, "--gossip-key", right)
	before := len(c.logOf(0))
	bad := c.join("m2", "--gossip-key", wrong)
	time.Sleep(5 * time.Second) // several join attempts and reconcile rounds
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if got, err := c.roles(ctx, 0); err != nil || got != "m1:leader:true" {
		t.Fatalf("members after a join with the wrong key: %q %v", got, err)
	}
	logged := c.logOf(0)[before:]
	var lines []string
	for _, l := range strings.Split(logged, "\n") {
		if strings.Contains(strings.ToLower(l), "decrypt") || strings.Contains(strings.ToLower(l), "key") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("m1 logged nothing about the attempt; its log since the join:\n%s", logged)
	}
	t.Logf("m1 logged %d lines about it, first: %s", len(lines), lines[0])
	t.Logf("the joiner logged: %s", lastLine(c.logOf(bad)))
	c.Kill(bad)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
