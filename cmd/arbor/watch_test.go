package main

import (
	"bufio"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lines runs arbor with args and returns its stdout lines as they come,
// its exit and its stderr.
func lines(t *testing.T, args ...string) (*exec.Cmd, <-chan string, chan error, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out <- sc.Text()
		}
		close(out)
		done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, out, done, stderr
}

func nextLine(t *testing.T, out <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-out:
		if !ok {
			t.Fatal("arbor exited before printing the line")
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatal("no line within 20s")
	}
	return ""
}

func TestWatchCommand(t *testing.T) {
	addr, _ := startDev(t)
	ep := "--endpoints=" + addr
	if o := arbor(t, nil, "", "create", ep, "/w", ""); o.code != 0 {
		t.Fatalf("create: %+v", o)
	}
	o := arbor(t, nil, "", "stat", ep, "/w")
	m := regexp.MustCompile(`czxid: (\d+)`).FindStringSubmatch(o.stdout)
	if m == nil {
		t.Fatalf("stat: %+v", o)
	}
	// since the create of /w: nothing is missed however late it registers.
	cmd, out, done, _ := lines(t, "watch", ep, "--recursive", "--since", m[1], "/w")
	arbor(t, nil, "", "create", ep, "/w/a", "x")
	arbor(t, nil, "", "set", ep, "/w/a", "y")
	for _, want := range []string{`^created /w/a \d+ "x"$`, `^data /w/a \d+ "y"$`} {
		if l := nextLine(t, out); !regexp.MustCompile(want).MatchString(l) {
			t.Fatalf("line %q, want %s", l, want)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := <-done; err != nil {
		t.Fatalf("watch after SIGINT: %v", err)
	}

	// get --watch: the data, then the one event, then exit 0.
	arbor(t, nil, "", "create", ep, "/g", "v1")
	_, out, done, _ = lines(t, "get", "--watch", ep, "/g")
	if l := nextLine(t, out); l != "v1" {
		t.Fatalf("get --watch printed %q first", l)
	}
	arbor(t, nil, "", "set", ep, "/g", "v2")
	if l := nextLine(t, out); !strings.HasPrefix(l, "data /g ") {
		t.Fatalf("get --watch event line %q", l)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("get --watch: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("get --watch did not exit after its event")
	}
}
