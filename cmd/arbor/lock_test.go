package main

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lock -- COMMAND runs COMMAND with the fencing token, passes its status
// through and releases the lock; --wait 0 fails at once on a held lock.
func TestLockRunsCommand(t *testing.T) {
	addr, _ := startDev(t)
	ep := "--endpoints=" + addr
	o := arbor(t, nil, "", "lock", ep, "/jobs/nightly", "--", "sh", "-c", `echo "$ARBOR_LOCK_TOKEN $ARBOR_LOCK_NODE"; exit 3`)
	first, node, _ := strings.Cut(strings.TrimSpace(o.stdout), " ")
	tok1, err := strconv.ParseUint(first, 10, 64)
	if o.code != 3 || err != nil || node != "/jobs/nightly/write-0000000000" {
		t.Fatalf("lock -- sh: exit %d, stdout %q, stderr %q", o.code, o.stdout, o.stderr)
	}
	// Without a command it prints the token and holds until interrupted.
	cmd, done, line, _ := startHolder(t, "lock", ep, "/jobs/nightly")
	held, _, _ := strings.Cut(line, " ")
	tok2, _ := strconv.ParseUint(held, 10, 64)
	if tok2 <= tok1 {
		t.Fatalf("second holder printed %q: want a token above %d", line, tok1)
	}
	if o := arbor(t, nil, "", "lock", "--wait", "0", ep, "/jobs/nightly", "--", "true"); o.code != 1 || !strings.HasPrefix(o.stderr, "TIMEOUT:") {
		t.Fatalf("lock --wait 0 of a held lock: %+v", o)
	}
	waiter, wout, wdone, _ := lines(t, "lock", "--wait", "20s", ep, "/jobs/nightly", "--", "sh", "-c", `echo "$ARBOR_LOCK_TOKEN"`)
	defer func() { _ = waiter.Process.Kill() }()
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := waitExit(done, 10*time.Second); err != nil {
		t.Fatalf("holder after SIGINT: %v", err)
	}
	if tok3, _ := strconv.ParseUint(nextLine(t, wout), 10, 64); tok3 <= tok2 {
		t.Fatalf("the waiter's token %d is not above %d", tok3, tok2)
	}
	if err := waitExit(wdone, 10*time.Second); err != nil {
		t.Fatalf("waiter: %v", err)
	}
	for _, args := range [][]string{
		{"lock", ep, "--", "true"},
		{"lock", ep, "/l", "--"},
		{"lock", "--wait", "-1s", ep, "/l", "--", "true"},
		{"elect", ep, "/e", "--", "true"},
		{"leader", ep},
	} {
		if o := arbor(t, nil, "", args...); o.code != 2 {
			t.Errorf("arbor %v: exit %d, want 2 (usage); stderr %q", args, o.code, o.stderr)
		}
	}
}

func waitExit(done <-chan error, d time.Duration) error {
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return &exec.ExitError{}
	}
}

// A holder whose session expires (its process stopped for longer than the
// session timeout) loses the lock to the next; woken, it stops its command
// and exits 1 saying the lock is lost.
func TestLockLostStopsCommand(t *testing.T) {
	addr, _ := startDev(t)
	ep := "--endpoints=" + addr
	cmd, done, _, stderr := startHolder(t, "lock", "--session-timeout", "2s", ep, "/lost", "--", "sh", "-c", "echo started; sleep 60")
	_ = cmd.Process.Signal(syscall.SIGSTOP)
	o := arbor(t, nil, "", "lock", "--wait", "15s", ep, "/lost", "--", "true")
	if o.code != 0 {
		t.Fatalf("the next contender did not get the lock of an expired holder: %+v", o)
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	select {
	case err := <-done:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Fatalf("holder exited with %v, want status 1", err)
		}
		if msg := stderr.String(); !strings.Contains(msg, "the lock /lost is lost") {
			t.Errorf("stderr %q does not say the lock was lost", msg)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the holder did not stop within 15s of losing its session")
	}
}

// elect holds the leadership; leader shows it, and leader --watch each
// change.
func TestElectAndLeader(t *testing.T) {
	addr, _ := startDev(t)
	ep := "--endpoints=" + addr
	if o := arbor(t, nil, "", "leader", ep, "/svc"); o.code != 0 || o.stdout != "no leader\n" {
		t.Fatalf("leader of nothing: %+v", o)
	}
	watcher, wout, _, _ := lines(t, "leader", "--watch", ep, "/svc")
	defer func() { _ = watcher.Process.Kill() }()
	if l := nextLine(t, wout); l != "no leader" {
		t.Fatalf("leader --watch first line %q", l)
	}
	cmd, done, line, _ := startHolder(t, "elect", ep, "/svc", "host-a:9000")
	tok, _, _ := strings.Cut(line, " ")
	if l := nextLine(t, wout); !strings.HasPrefix(l, "host-a:9000 (session ") || !strings.HasSuffix(l, "token "+tok+")") {
		t.Fatalf("leader --watch after elect: %q (elect printed %q)", l, line)
	}
	o := arbor(t, nil, "", "leader", "--json", ep, "/svc")
	if o.code != 0 || !strings.Contains(o.stdout, `"token":`+tok) {
		t.Fatalf("leader --json: %+v", o)
	}
	b, bout, bdone, _ := lines(t, "elect", ep, "/svc", "host-b:9000", "--", "sh", "-c", `echo "$ARBOR_ELECTION_TOKEN"; sleep 2`) // leads long enough for the watcher to see it
	defer func() { _ = b.Process.Kill() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if o := arbor(t, nil, "", "ls", ep, "/svc"); strings.Count(o.stdout, "cand-") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b's candidacy did not show up under /svc")
		}
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := waitExit(done, 10*time.Second); err != nil {
		t.Fatalf("elect after SIGINT: %v", err)
	}
	// The leadership passes from a to b in one step: no "no leader" between.
	btok := nextLine(t, bout)
	if l := nextLine(t, wout); !strings.HasPrefix(l, "host-b:9000 (session ") || !strings.HasSuffix(l, "token "+btok+")") {
		t.Fatalf("leader --watch after a resigned: %q (b's token %s)", l, btok)
	}
	if n1, _ := strconv.ParseUint(tok, 10, 64); mustUint(t, btok) <= n1 {
		t.Fatalf("b's token %s is not above a's %s", btok, tok)
	}
	if err := waitExit(bdone, 10*time.Second); err != nil {
		t.Fatalf("elect -- sh: %v", err)
	}
	if l := nextLine(t, wout); l != "no leader" {
		t.Fatalf("leader --watch after b resigned: %q", l)
	}
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%q is not a token", s)
	}
	return n
}

// kill -9 of arbor lock takes its command with it: nobody could stop the
// command once the lock is lost.
func TestLockCommandDiesWithArbor(t *testing.T) {
	addr, _ := startDev(t)
	ep := "--endpoints=" + addr
	cmd, _, line, _ := startHolder(t, "lock", ep, "/orphan", "--", "sh", "-c", `echo $$; exec sleep 600`)
	pid, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("first line %q: want the command's pid", line)
	}
	_ = cmd.Process.Kill()
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatal("the command outlived kill -9 of arbor lock")
		}
	}
}
