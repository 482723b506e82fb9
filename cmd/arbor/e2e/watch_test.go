package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// arbor watch survives kill -9 of its member and of the leader: it resumes
// on another member since the last event it printed, so every create is
// printed exactly once, in order, with no gap.
func TestWatchCommandSurvivesMemberKills(t *testing.T) {
	c := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	writer := dialContender(t, c.endpoints(1)...)
	_, st, err := writer.Create(ctx, "/w", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Since the create of /w: however late the watch registers, it misses
	// nothing.
	out := newLineLog()
	watch := exec.Command(binary, "watch", "--recursive", "--since", fmt.Sprint(st.Czxid),
		"--endpoints", c.addr(0), "/w") // one endpoint: there (it learns the others)
	watch.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pipe, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { out.read(pipe); close(done) }()
	defer func() {
		_ = syscall.Kill(-watch.Process.Pid, syscall.SIGKILL)
		<-done
		_ = watch.Wait()
	}()
	const n = 60
	for i := range n {
		switch i {
		case 20:
			c.Kill(0) // the watch's member
			c.start(0)
		case 40:
			l := c.findLeader(20 * time.Second)
			c.Kill(l)
			c.start(l)
		}
		p := fmt.Sprintf("/w/n%03d", i)
		for {
			_, _, err := writer.Create(ctx, p, []byte(p))
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("create %s: %v", p, err)
			}
			if st, _ := writer.Exists(ctx, p); st != nil {
				break // an unknown outcome that was applied
			}
		}
	}
	last := fmt.Sprintf("created /w/n%03d ", n-1)
	if _, err := out.find(last, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "created" {
			got = append(got, f[1])
		}
	}
	if len(got) != n {
		t.Fatalf("%d created events for %d creates:\n%s", len(got), n, out.String())
	}
	for i, p := range got {
		if want := fmt.Sprintf("/w/n%03d", i); p != want {
			t.Fatalf("event %d is %s, want %s (a gap, a repeat or disorder):\n%s", i, p, want, out.String())
		}
	}
}
