package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
)

// tmpfs mounts a size-limited tmpfs (in this test's private mount
// namespace) and returns its mount point, unmounted at cleanup.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "arbor-faults-tmpfs-")
	if err != nil {
		t.Fatal(err)
	}
	if err := sh("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sh("umount", dir); err != nil {
			t.Error(err)
		}
		os.Remove(dir)
	})
	return dir
}

func freeBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// fillTo writes a ballast file in dir until the file system has at most
// leave bytes free (leave 0: until it is full).
func fillTo(t *testing.T, dir string, leave uint64) string {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		free := freeBytes(t, dir)
		if free <= leave {
			return path
		}
		n := min(uint64(len(buf)), free-leave)
		if _, err := f.Write(buf[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path
			}
			t.Fatal(err)
		}
	}
}

// A member whose disk has less free space than --min-free-bytes refuses
// client writes with UNAVAILABLE and a message naming the cause, keeps
// serving reads, and accepts writes again once space is freed; nothing in
// its data dir is damaged.
func TestDiskFullGuardRefusesWritesUntilSpaceFreed(t *testing.T) {
	requireEnv(t)
	mnt := tmpfs(t, "24m")
	const reserve = 8 << 20
	c := newCluster(t, 3, clusterOpts{
		dataDir: func(i int) string {
			if i == 0 {
				return filepath.Join(mnt, "data")
			}
			return ""
		},
		perArgs: func(i int) []string {
			if i == 0 {
				return []string{"--min-free-bytes", fmt.Sprint(reserve)}
			}
			return nil
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m1, err := c.dial(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close(ctx)
	if _, _, err := m1.Create(ctx, "/before", []byte("v1")); err != nil {
		t.Fatalf("create through m1 with space: %v", err)
	}

	ballast := fillTo(t, mnt, 4<<20)
	// The guard reads free space at most every 100ms: a write may still
	// pass right after the disk filled.
	var werr error
	last := "v1"
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, werr = m1.Set(ctx, "/before", []byte("v2"), -1); werr != nil {
			break
		}
		last = "v2"
	}
	if !errors.Is(werr, client.ErrUnavailable) {
		t.Fatalf("set through m1 with 4 MiB free under an 8 MiB reserve: %v, want UNAVAILABLE", werr)
	}
	msg := werr.Error()
	if !strings.Contains(msg, "disk full:") || !strings.Contains(msg, "8 MiB reserved") ||
		!strings.Contains(msg, filepath.Join(mnt, "data")) || !strings.Contains(msg, "writes resume when space is freed") {
		t.Fatalf("error %q does not say the disk is full, where, and what to do", msg)
	}
	t.Logf("write through the full member: %v", werr)
	if data, _, err := m1.Get(ctx, "/before"); err != nil || string(data) != last {
		t.Fatalf("linearizable read through the full member: %q, %v; want %q", data, err, last)
	}
	if _, _, err := m1.Get(ctx, "/before", client.Local()); err != nil {
		t.Fatalf("local read through the full member: %v", err)
	}
	// The rest of the cluster keeps taking writes, and m1 still applies
	// them: replication is not refused, only client writes through m1.
	m2, err := c.dial(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close(ctx)
	if _, _, err := m2.Create(ctx, "/elsewhere", []byte("x")); err != nil {
		t.Fatalf("create through m2 while m1's disk is full: %v", err)
	}
	if _, _, err := m1.Get(ctx, "/elsewhere"); err != nil {
		t.Fatalf("m1 reading a write made through m2: %v", err)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	var after error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, after = m1.Set(ctx, "/before", []byte("v3"), -1); after == nil {
			break
		}
	}
	if after != nil {
		t.Fatalf("set through m1 after the ballast was deleted: %v", after)
	}
	if data, _, err := m2.Get(ctx, "/before"); err != nil || string(data) != "v3" {
		t.Fatalf("read through m2 after m1's write: %q, %v", data, err)
	}
	if !c.Members[0].Running() {
		t.Fatalf("m1 exited: %v", c.Members[0].Err())
	}
	for i := range c.Members {
		if err := c.stop(i, 15*time.Second); err != nil {
			t.Errorf("%s: %v", c.Members[i].Name, err)
		}
		if err := checkDataDir(c.Members[i].DataDir); err != nil {
			t.Errorf("data dir of %s: %v", c.Members[i].Name, err)
		}
	}
}

// A member whose disk fills up fails its log write and exits non-zero: it
// never acknowledges what it could not persist. Restarted on the same,
// freed disk it recovers, and every write the cluster acknowledged while
// that member's vote was needed is there, with the only other member that
// shared the quorum still down. As a follower, its disk fills through
// replication, which the guard does not stop (the guard only refuses
// client writes proposed through a member); as the leader, through the
// entries it appends itself.
func TestDiskFullStopsMemberAndLosesNothing(t *testing.T) {
	requireEnv(t)
	t.Run("follower", func(t *testing.T) { diskFullStops(t, false) })
	t.Run("leader", func(t *testing.T) { diskFullStops(t, true) })
}

// makeLeader hands leadership around (a SIGTERM'd leader hands over before
// it stops; it is then restarted) until member want leads.
func (c *cluster) makeLeader(want int) {
	c.t.Helper()
	for range 20 {
		l := c.waitLeader(15 * time.Second)
		if l == want {
			return
		}
		if err := c.stop(l, 15*time.Second); err != nil {
			c.t.Fatal(err)
		}
		c.start(l)
		c.waitReady(l, 30*time.Second)
	}
	c.t.Fatalf("%s never became leader", c.Members[want].Name)
}

func diskFullStops(t *testing.T, asLeader bool) {
	mnt := tmpfs(t, "8m")
	c := newCluster(t, 3, clusterOpts{
		dataDir: func(i int) string {
			if i == 0 {
				return filepath.Join(mnt, "data")
			}
			return ""
		},
	})
	if asLeader {
		c.makeLeader(0)
	} else {
		c.makeLeader(1)
	}
	// With m3 (a follower) down, every acknowledged write needs m1's fsync.
	if err := c.stop(2, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := c.dial(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close(ctx)
	if _, _, err := cl.Create(ctx, "/d", nil); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var acked []string
	wctx, wcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		data := []byte(strings.Repeat("x", 4096))
		for i := 0; wctx.Err() == nil; i++ {
			octx, ocancel := context.WithTimeout(wctx, 2*time.Second)
			p, _, err := cl.Create(octx, fmt.Sprintf("/d/n%06d", i), data)
			ocancel()
			if err != nil {
				return // m1 stopped: no quorum, the client breaks
			}
			mu.Lock()
			acked = append(acked, p)
			mu.Unlock()
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes acknowledged in 30s", n)
		}
	}
	ballast := fillTo(t, mnt, 0)
	exitErr := c.wait(0, 60*time.Second)
	wcancel()
	wg.Wait()
	var ee *exec.ExitError
	if !errors.As(exitErr, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("m1 with a full disk: exit %v, want a non-zero exit", exitErr)
	}
	logb := []byte(c.Members[0].Log())
	if !strings.Contains(string(logb), "storage") {
		t.Errorf("m1's log does not name the storage failure; tail:\n%s", tail(string(logb), 10))
	}
	t.Logf("m1 stopped with %v after %d acknowledged writes; last log line: %s", exitErr, len(acked), tail(string(logb), 1))

	// Only m1 (restarted on the freed disk) and m3 (which missed every
	// write) may answer now: m2, the other copy of the writes, stays down.
	c.Kill(1)
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if err := checkDataDir(c.Members[0].DataDir); err != nil {
		t.Fatalf("m1's data dir after the failed write: %v", err)
	}
	c.start(0)
	c.start(2)
	c.waitReady(0, 30*time.Second)
	c.waitReady(2, 30*time.Second)
	rc, err := c.dial(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx)
	for _, p := range acked {
		if _, _, err := rc.Get(ctx, p); err != nil {
			t.Fatalf("acknowledged %s lost after m1's disk filled and m1 restarted: %v", p, err)
		}
	}
	t.Logf("all %d acknowledged writes read back through m3 with m1 and m3 up", len(acked))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
