package e2e

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// existsVia reports whether path exists, read linearizably on member i.
func (c *cluster) existsVia(i int, path string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := dial(ctx, c.Members[i].ClientAddr)
	if err != nil {
		return false, err
	}
	defer conn.close()
	r := req("exists")
	r.Path = path
	resp, err := conn.call(ctx, r)
	if err != nil {
		return false, err
	}
	return resp.Stat.Stat != nil, nil
}

// A session that keeps pinging through a follower keeps its session and its
// ephemeral node through kill -9 of the leader: the new leader gives every
// session a full timeout.
func TestPingingSessionSurvivesLeaderKill(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.findLeader(10 * time.Second)
	via := (lead + 1) % 3
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := dial(ctx, c.Members[via].ClientAddr) // a 10 s session
	if err != nil {
		t.Fatal(err)
	}
	defer conn.close()
	cr := req("create")
	cr.Path, cr.Ephemeral = "/pinger", true
	if _, err := conn.call(ctx, cr); err != nil {
		t.Fatal(err)
	}
	c.Kill(lead)
	// Past the session timeout, pinging every 2 s: UNAVAILABLE is allowed
	// while there is no leader, an expiry never.
	for until := time.Now().Add(12 * time.Second); time.Now().Before(until); time.Sleep(2 * time.Second) {
		_, err := conn.call(ctx, req("ping"))
		var we *wire.Error
		if err != nil && !(errors.As(err, &we) && we.Code == wire.CodeUnavailable) {
			t.Fatalf("ping after the leader was killed: %v", err)
		}
	}
	ok, err := c.existsVia(via, "/pinger")
	if err != nil || !ok {
		t.Fatalf("the pinging session's ephemeral after the leader's kill: exists=%v err=%v", ok, err)
	}
}

// A client process killed without a close (kill -9 of arbor create
// --ephemeral holding a node) loses its ephemeral within its session timeout
// plus 2 s, and not before the timeout could have run from its last ping.
func TestKilledClientLosesItsEphemeral(t *testing.T) {
	c := startCluster(t, 3)
	const timeout = 2 * time.Second
	holder := exec.Command(binary, "create", "--ephemeral", "--session-timeout", timeout.String(),
		"--endpoints", c.Members[1].ClientAddr, "/killed", "x")
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "/killed\n" {
		t.Fatalf("holder printed %q, %v", line, err)
	}
	time.Sleep(timeout) // a few pings
	if ok, err := c.existsVia(0, "/killed"); err != nil || !ok {
		t.Fatalf("held node: exists=%v err=%v", ok, err)
	}
	_ = holder.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	for {
		ok, err := c.existsVia(2, "/killed")
		if err == nil && !ok {
			break
		}
		if time.Since(killed) > timeout+2*time.Second {
			t.Fatalf("the killed client's ephemeral still exists %v after the kill (timeout %v)", time.Since(killed), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Its last ping was at most timeout/3 before the kill.
	if d := time.Since(killed); d < timeout-timeout/3-100*time.Millisecond {
		t.Fatalf("the ephemeral went %v after the kill, before its session could have expired", d)
	}
}
