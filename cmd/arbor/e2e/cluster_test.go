package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

func mustDial(t *testing.T, addr string) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dial(ctx, addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(c.close)
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A write acknowledged by one member is seen by a linearizable read on every
// other member at once, with no retry or sleep in between.
func TestWriteOnOneMemberReadLinearizablyOnAnother(t *testing.T) {
	c := startCluster(t, 3)
	conns := make([]*rawConn, 3)
	for i, m := range c.Members {
		conns[i] = mustDial(t, m.ClientAddr)
	}
	for w := range 3 {
		for r := range 3 {
			if w == r {
				continue
			}
			path := fmt.Sprintf("/w%d-r%d", w, r)
			want := fmt.Appendf(nil, "written through %s", c.Members[w].Name)
			created, err := conns[w].create(ctxFor(t, 5*time.Second), path, want)
			if err != nil {
				t.Fatalf("create %s through %s: %v", path, c.Members[w].Name, err)
			}
			got, err := conns[r].get(ctxFor(t, 5*time.Second), path, false)
			if err != nil {
				t.Fatalf("get %s through %s right after the write: %v", path, c.Members[r].Name, err)
			}
			if string(got.Data) != string(want) {
				t.Fatalf("get %s through %s = %q, want %q", path, c.Members[r].Name, got.Data, want)
			}
			if got.Zxid < created.Zxid {
				t.Fatalf("read zxid %d is older than the write's zxid %d", got.Zxid, created.Zxid)
			}
		}
	}
}

// createWithRetry keeps trying to create path through any live member until
// it succeeds, and returns when it did. NODE_EXISTS after an indeterminate
// attempt counts as success.
func createWithRetry(t *testing.T, c *cluster, path string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	var last error
	for time.Now().Before(deadline) {
		for _, m := range c.Members {
			if !m.Running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
			conn, err := dial(ctx, m.ClientAddr)
			if err == nil {
				_, err = conn.create(ctx, path, []byte("x"))
				conn.close()
			}
			cancel()
			var we *wire.Error
			if err == nil || (errors.As(err, &we) && we.Code == wire.CodeNodeExists) {
				return time.Since(start)
			}
			last = err
		}
	}
	t.Fatalf("no write of %s succeeded within %v; last error: %v", path, within, last)
	return 0
}

// Killing the leader with SIGKILL leaves a cluster that takes writes again
// within 3 s; the killed member restarts from its data dir and catches up.
func TestLeaderKilledWritesContinueAndMemberCatchesUp(t *testing.T) {
	c := startCluster(t, 3)
	createWithRetry(t, c, "/before", 5*time.Second)
	l := c.findLeader(5 * time.Second)
	c.Kill(l)
	took := createWithRetry(t, c, "/after-kill", 10*time.Second)
	if took > 3*time.Second {
		t.Fatalf("first write after killing the leader took %v, want <= 3s", took)
	}
	t.Logf("first acknowledged write %v after the leader was killed", took)

	c.start(l)
	c.waitReady(l, 20*time.Second)
	conn := mustDial(t, c.Members[l].ClientAddr)
	for _, p := range []string{"/before", "/after-kill"} {
		if _, err := conn.get(ctxFor(t, 5*time.Second), p, false); err != nil {
			t.Fatalf("restarted %s: get %s: %v", c.Members[l].Name, p, err)
		}
	}
}

// A member that was down while the others compacted their logs past its
// position catches up by installing a snapshot.
func TestRestartedMemberCatchesUpPastCompaction(t *testing.T) {
	c := startCluster(t, 3, "--snapshot-entries", "100")
	l := c.findLeader(5 * time.Second)
	down := (l + 1) % 3
	c.Kill(down)
	up := c.Members[(down+1)%3]
	conn := mustDial(t, up.ClientAddr)
	const n = 1500
	for i := range n {
		if _, err := conn.create(ctxFor(t, 5*time.Second), fmt.Sprintf("/k%04d", i), []byte("v")); err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	c.start(down)
	c.waitReady(down, 30*time.Second)
	// Ready only means it follows a leader: once it has applied the
	// leader's commit index (the snapshot installed), a local read answers
	// every node from its own state.
	c.settled(down, 20*time.Second)
	back := mustDial(t, c.Members[down].ClientAddr)
	resp, err := back.call(ctxFor(t, 5*time.Second), wire.Request{Op: "children", Path: "/", Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(resp.Children); got < n {
		t.Fatalf("restarted member holds %d children of /, want >= %d", got, n)
	}
	// And a linearizable read through it sees the last write.
	if _, err := back.get(ctxFor(t, 5*time.Second), fmt.Sprintf("/k%04d", n-1), false); err != nil {
		t.Fatalf("linearizable read of the last write through the restarted member: %v", err)
	}
}

// kill -9 of every member at once loses no acknowledged write.
func TestKillAllLosesNoAcknowledgedWrite(t *testing.T) {
	c := startCluster(t, 3)
	c.findLeader(5 * time.Second)

	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := c.Members[w%3]
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn, err := dial(ctx, m.ClientAddr)
			cancel()
			if err != nil {
				return
			}
			defer conn.close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("/w%d-%06d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := conn.create(ctx, p, []byte("durable"))
				cancel()
				if err != nil {
					return // the connection died with the members
				}
				mu.Lock()
				acked = append(acked, p)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond) // let writes pile up, then crash mid-flight
	c.KillAll()                         // every member at once, then each waited for
	close(stop)
	wg.Wait()
	mu.Lock()
	want := append([]string(nil), acked...)
	mu.Unlock()
	if len(want) == 0 {
		t.Fatal("no write was acknowledged before the crash")
	}
	for i := range c.Members {
		c.start(i)
	}
	for i := range c.Members {
		c.waitReady(i, 30*time.Second)
	}
	conn := mustDial(t, c.Members[0].ClientAddr)
	resp, err := conn.call(ctxFor(t, 10*time.Second), wire.Request{Op: "children", Path: "/"})
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[string]bool, len(resp.Children))
	for _, name := range resp.Children {
		have["/"+name] = true
	}
	var lost []string
	for _, p := range want {
		if !have[p] {
			lost = append(lost, p)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged writes lost after kill -9 of every member, e.g. %v", len(lost), len(want), lost[:min(5, len(lost))])
	}
	t.Logf("%d acknowledged writes all survived", len(want))
}

// SIGTERM stops a leader cleanly: it hands leadership over first, so the
// others take writes again at once, without waiting out an election timeout.
func TestSigtermLeaderHandsOverAndExitsZero(t *testing.T) {
	c := startCluster(t, 3)
	createWithRetry(t, c, "/before", 5*time.Second)
	l := c.findLeader(5 * time.Second)
	if err := c.stop(l); err != nil {
		t.Fatalf("leader %s after SIGTERM: %v (want exit status 0)", c.Members[l].Name, err)
	}
	took := createWithRetry(t, c, "/after-sigterm", 10*time.Second)
	if took > time.Second {
		t.Fatalf("first write after the leader's clean stop took %v, want <= 1s (leadership handed over)", took)
	}
	c.start(l)
	c.waitReady(l, 20*time.Second)
}
