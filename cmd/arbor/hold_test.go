package main

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// create --ephemeral -- COMMAND holds the node while COMMAND runs, tells it
// where the node is, passes its exit status through and then lets the node
// go.
func TestCreateEphemeralRunsCommand(t *testing.T) {
	addr, _ := startDev(t)
	ep := "--endpoints=" + addr
	script := binary + ` get ` + ep + ` "$ARBOR_NODE"; test -n "$ARBOR_SESSION"`
	o := arbor(t, nil, "", "create", "--ephemeral", "--sequential", ep, "/svc-", "host:1", "--", "sh", "-c", script)
	if o.code != 0 || !strings.HasPrefix(o.stdout, "/svc-0000000000\nhost:1") {
		t.Fatalf("create -- sh: exit %d, stdout %q, stderr %q", o.code, o.stdout, o.stderr)
	}
	if o := arbor(t, nil, "", "get", ep, "/svc-0000000000"); o.code != 1 || !strings.HasPrefix(o.stderr, "NO_NODE") {
		t.Fatalf("the node outlived its command: %+v", o)
	}
	if o := arbor(t, nil, "", "create", "--ephemeral", ep, "/e3", "--", "sh", "-c", "exit 3"); o.code != 3 || o.stderr != "" {
		t.Fatalf("exit status not passed through: %+v", o)
	}
	for _, args := range [][]string{
		{"create", ep, "/p", "--", "true"}, // needs --ephemeral
		{"create", "--ephemeral", ep, "/p", "--"},
		{"create", "--ephemeral", ep, "/p", "a", "b", "--", "true"},
	} {
		if o := arbor(t, nil, "", args...); o.code != 2 {
			t.Errorf("arbor %v: exit %d, want 2 (usage); stderr %q", args, o.code, o.stderr)
		}
	}
}

// startHolder runs arbor with args and waits for its first line of output.
func startHolder(t *testing.T, args ...string) (*exec.Cmd, chan error, string, *syncBuffer) {
	t.Helper()
	cmd, out, done, stderr := lines(t, args...)
	return cmd, done, nextLine(t, out), stderr
}

// Without a command, create --ephemeral holds the node until interrupted,
// then closes its session (the node goes at once) and exits 0.
func TestCreateEphemeralHoldsUntilInterrupted(t *testing.T) {
	addr, _ := startDev(t)
	ep := "--endpoints=" + addr
	cmd, done, path, _ := startHolder(t, "create", "--ephemeral", ep, "/held", "x")
	if path != "/held" {
		t.Fatalf("printed %q", path)
	}
	time.Sleep(500 * time.Millisecond)
	if o := arbor(t, nil, "", "get", ep, "/held"); o.code != 0 || o.stdout != "x" {
		t.Fatalf("held node: %+v", o)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after SIGINT: %v, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit within 10s of SIGINT")
	}
	if o := arbor(t, nil, "", "get", ep, "/held"); o.code != 1 {
		t.Fatalf("node still there after the holder's clean exit: %+v", o)
	}
}

// A holder whose session expires (its process was stopped for longer than
// the session timeout) stops its command and exits 1 saying so; the node is
// gone.
func TestCreateEphemeralLostSessionStopsCommand(t *testing.T) {
	addr, _ := startDev(t)
	ep := "--endpoints=" + addr
	cmd, done, _, stderr := startHolder(t, "create", "--ephemeral", "--session-timeout", "2s", ep, "/lost", "--", "sh", "-c", "echo started; sleep 60")
	_ = cmd.Process.Signal(syscall.SIGSTOP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if o := arbor(t, nil, "", "get", ep, "/lost"); o.code == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stopped holder's node was not expired within 10s of a 2s session")
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	select {
	case err := <-done:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Fatalf("holder exited with %v, want status 1", err)
		}
		// Woken after the expiry, the holder learns either that its
		// deadline passed (jeopardy) or, first, that the cluster expired the
		// session: both mean the node is gone, and the line says which.
		if msg := stderr.String(); !strings.Contains(msg, "the ephemeral node /lost is lost") ||
			!strings.Contains(msg, "SESSION_EXPIRED:") && !strings.Contains(msg, "UNAVAILABLE:") {
			t.Errorf("stderr %q does not say the node was lost, and why", msg)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the holder did not stop within 15s of losing its session")
	}
}
