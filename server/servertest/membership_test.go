package servertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/server"
	"github.com/arbor-db/arbor/server/servertest"
)

var gossipKey = []byte("0123456789abcdef0123456789abcdef")

// roles renders the members op as "name:role:alive" sorted by name.
func roles(t *testing.T, c *client.Client) string {
	t.Helper()
	ms, err := c.Members(context.Background())
	if err != nil {
		return "error: " + err.Error()
	}
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s:%s:%t", m.Name, m.Role, m.Alive))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func waitRoles(t *testing.T, c *client.Client, want func(string) bool, what string) string {
	t.Helper()
	var got string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got = roles(t, c); want(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: members are %q", what, got)
		}
	}
}

func countRole(s, role string) int { return strings.Count(s, ":"+role+":true") }

// A one-member cluster grows to three with Join while a client writes: the
// joiners are added as learners, promoted once caught up, and no
// acknowledged write is lost.
func TestGrowByGossipJoin(t *testing.T) {
	cl := servertest.NewCluster(t, 1, servertest.Gossip(gossipKey))
	w := dialClient(t, cl.Addr(0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var acked []string
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			p := fmt.Sprintf("/w%05d", i)
			if _, _, err := w.Create(ctx, p, []byte(p)); err != nil {
				if ctx.Err() == nil && !client.IsIndeterminate(err) {
					werr = err
				}
				if ctx.Err() != nil {
					return
				}
				continue
			}
			acked = append(acked, p)
		}
	})
	for range 2 {
		i := cl.Join(false, nil)
		cl.WaitReady(i)
	}
	got := waitRoles(t, w, func(s string) bool { return countRole(s, "leader") == 1 && countRole(s, "follower") == 2 },
		"two joiners promoted to voters")
	cancel()
	wg.Wait()
	if werr != nil {
		t.Fatalf("the writer failed while members joined: %v", werr)
	}
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
	// Every acknowledged write is on the newest member.
	r := dialClient(t, cl.Addr(2))
	for _, p := range acked {
		if data, _, err := r.Get(context.Background(), p); err != nil || string(data) != p {
			t.Fatalf("acknowledged %s: %q %v on the joined member (members %s)", p, data, err, got)
		}
	}
	// The members op says the same on every member.
	for i := range cl.Size() {
		if g := roles(t, dialClient(t, cl.Addr(i))); g != got {
			t.Errorf("members via %s: %q, via m1: %q", cl.Name(i), g, got)
		}
	}
}

// A learner serves local reads and watches, and takes no part in quorum.
func TestLearnerJoinServesReadsNotQuorum(t *testing.T) {
	cl := servertest.NewCluster(t, 1, servertest.Gossip(gossipKey))
	w := dialClient(t, cl.Addr(0))
	li := cl.Join(true, nil)
	cl.WaitReady(li)
	waitRoles(t, w, func(s string) bool { return strings.Contains(s, "m2:learner:true") }, "the learner added")
	lc := dialClient(t, cl.Addr(li))
	watcher, err := lc.Watch(context.Background(), "/cfg")
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close(context.Background())
	if _, _, err := w.Create(context.Background(), "/cfg", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-watcher.Events():
		if ev.Type != client.EventCreated {
			t.Fatalf("learner's watch: %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the learner's watch saw no event")
	}
	if data, _, err := lc.Get(context.Background(), "/cfg", client.Local()); err != nil || string(data) != "v1" {
		t.Fatalf("local read on the learner: %q %v", data, err)
	}
	// It stays a learner (it asked to), and writes go on without it.
	time.Sleep(2 * time.Second) // several reconcile rounds
	if got := roles(t, w); !strings.Contains(got, "m2:learner") {
		t.Fatalf("the learner was promoted: %s", got)
	}
	cl.Stop(li)
	if _, err := w.Set(context.Background(), "/cfg", []byte("v2"), client.AnyVersion); err != nil {
		t.Fatalf("a write with the learner stopped: %v", err)
	}
}

// A member with the wrong gossip key is never added.
func TestWrongGossipKeyCannotJoin(t *testing.T) {
	cl := servertest.NewCluster(t, 1, servertest.Gossip(gossipKey))
	w := dialClient(t, cl.Addr(0))
	cl.Join(false, []byte("fedcba9876543210fedcba9876543210"))
	time.Sleep(3 * time.Second) // several join attempts and reconcile rounds
	if got := roles(t, w); got != "m1:leader:true" {
		t.Fatalf("members after a join with the wrong key: %s", got)
	}
}

// A client given one member's address learns the others and fails over to
// them when that member goes.
func TestClientLearnsMembersFromOne(t *testing.T) {
	cl := servertest.NewCluster(t, 3)
	c := dialClient(t, cl.Addr(0))
	for deadline := time.Now().Add(10 * time.Second); len(c.Endpoints()) < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("endpoints %v: the client did not learn the members", c.Endpoints())
		}
	}
	if _, _, err := c.Create(context.Background(), "/x", nil); err != nil {
		t.Fatal(err)
	}
	cl.Stop(0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Exists(ctx, "/x"); err != nil {
		t.Fatalf("after its only given member stopped: %v", err)
	}
	if c.Server() == cl.Name(0) {
		t.Fatalf("still on %s", c.Server())
	}
}

// adminMember posts a membership change to member i.
func adminMember(t *testing.T, cl *servertest.Cluster, i int, mc server.MemberChange) error {
	t.Helper()
	body, _ := json.Marshal(mc)
	resp, err := http.Post("http://"+cl.Addr(i)+server.AdminMembersPath, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	return nil
}

// A removed member stops; brought back with an empty data dir under the
// same name it joins again (an id of its own incarnation), and the leader
// itself can be removed.
func TestRemoveAndRejoin(t *testing.T) {
	cl := servertest.NewCluster(t, 1, servertest.Gossip(gossipKey))
	w := dialClient(t, cl.Addr(0))
	for range 2 {
		cl.WaitReady(cl.Join(false, nil))
	}
	waitRoles(t, w, func(s string) bool { return countRole(s, "follower") == 2 }, "three voters")
	if err := adminMember(t, cl, 0, server.MemberChange{Op: "remove", Name: "m3"}); err != nil {
		t.Fatal(err)
	}
	waitRoles(t, w, func(s string) bool { return !strings.Contains(s, "m3") }, "m3 removed")
	waitRecords(t, w, "m1 m2", "m3 removed")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if done, err := cl.Exited(2); done {
			if !errors.Is(err, server.ErrRemoved) {
				t.Fatalf("the removed member stopped with %v, want ErrRemoved", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the removed member did not stop")
		}
	}
	cl.Rejoin(2)
	cl.WaitReady(2)
	waitRoles(t, w, func(s string) bool { return strings.Contains(s, "m3:follower:true") }, "m3 back as a voter")
	waitRecords(t, w, "m1 m2 m3", "m3 back")
	// The leader removes itself: the others go on.
	leader := -1
	for i := range 3 {
		for _, m := range mustMembers(t, w) {
			if m.Role == "leader" && m.Name == cl.Name(i) {
				leader = i
			}
		}
	}
	if err := adminMember(t, cl, leader, server.MemberChange{Op: "remove", Name: cl.Name(leader)}); err != nil {
		t.Fatalf("removing the leader %s: %v", cl.Name(leader), err)
	}
	other := (leader + 1) % 3
	c := dialClient(t, cl.Addr(other))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, _, err := c.Create(ctx, "/after-leader-removed", nil); err != nil {
		t.Fatalf("a write after the leader removed itself: %v", err)
	}
	if got := roles(t, c); strings.Contains(got, cl.Name(leader)) || countRole(got, "leader") != 1 {
		t.Fatalf("members after the leader's removal: %s", got)
	}
	var left []string
	for i := range 3 {
		if i != leader {
			left = append(left, cl.Name(i))
		}
	}
	waitRecords(t, c, strings.Join(left, " "), "the leader removed")
}

// waitRecords waits until the records under /arbor/members are those of
// want (names, space-separated, sorted).
func waitRecords(t *testing.T, c *client.Client, want, what string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		names, _, err := c.Children(context.Background(), "/arbor/members")
		sort.Strings(names)
		if got = strings.Join(names, " "); err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /arbor/members holds %q (err %v), want %q", what, got, err, want)
		}
	}
}

func mustMembers(t *testing.T, c *client.Client) []wire.Member {
	t.Helper()
	ms, err := c.Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// A member added by hand and then started with --join (its own
// incarnation's id) takes the place of the one added by hand.
func TestAddedByHandThenJoined(t *testing.T) {
	cl := servertest.NewCluster(t, 1, servertest.Gossip(gossipKey))
	w := dialClient(t, cl.Addr(0))
	if err := adminMember(t, cl, 0, server.MemberChange{Op: "add", Name: "m2", PeerURL: "127.0.0.1:1", Learner: true}); err != nil {
		t.Fatal(err)
	}
	waitRoles(t, w, func(s string) bool { return strings.Contains(s, "m2:learner") }, "m2 added by hand")
	cl.WaitReady(cl.Join(false, nil))
	waitRoles(t, w, func(s string) bool { return strings.Contains(s, "m2:follower:true") }, "m2 running as a voter")
}

// members answers from the member's own view when there is no quorum, and
// says so; with a leader, the leader reports each member's progress.
func TestMembersWithoutQuorum(t *testing.T) {
	cl := servertest.NewCluster(t, 3)
	raw := connect(t, cl.Addr(0))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := raw.do(wire.Request{Op: wire.OpMembers})
		withLag, selfLeads, selfApplied := 0, false, uint64(0)
		for _, m := range r.Members {
			if m.Lag != nil && m.Applied > 0 {
				withLag++
			}
			if m.Name == cl.Name(0) {
				selfLeads, selfApplied = m.Role == "leader", m.Applied
			}
		}
		if r.NoLeader {
			t.Fatalf("a member of a healthy cluster says it has no leader: %+v", r)
		}
		// The leader reports everyone's progress; a follower its own.
		if selfLeads && withLag == 3 || !selfLeads && withLag == 0 && selfApplied > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members: %+v", r.Members)
		}
	}
	cl.Stop(1)
	cl.Stop(2)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := raw.do(wire.Request{Op: wire.OpMembers})
		if r.OK && r.NoLeader && len(r.Members) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members without a quorum: %+v", r)
		}
	}
}

// A member restarted on a new peer address is reachable again without an
// operator: the leader records the address gossip says.
func TestMemberMovesPeerAddress(t *testing.T) {
	cl := servertest.NewCluster(t, 3, servertest.Gossip(gossipKey))
	w := dialClient(t, cl.Addr(0))
	cl.RestartOnNewPeerAddr(2)
	cl.WaitReady(2)
	if _, _, err := w.Create(context.Background(), "/after-move", []byte("x")); err != nil {
		t.Fatal(err)
	}
	moved := dialClient(t, cl.Addr(2))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if data, _, err := moved.Get(context.Background(), "/after-move", client.Local()); err == nil && string(data) == "x" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the moved member did not catch up with a write made after its move")
		}
	}
	for _, m := range mustMembers(t, w) {
		if m.Name == cl.Name(2) && !strings.HasSuffix(m.PeerURL, strings.Split(cl.PeerAddr(2), ":")[1]) {
			t.Fatalf("raft still has %s at %s, not %s", m.Name, m.PeerURL, cl.PeerAddr(2))
		}
	}
}
