package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startArbor runs arbor with args in the background; done is closed when
// it has exited, with its exit status in *code.
func startArbor(t *testing.T, args ...string) (stdout, stderr *syncBuffer, done <-chan struct{}, code *int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited, status := make(chan struct{}), new(int)
	go func() {
		defer close(exited)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			*status = ee.ExitCode()
		} else if err != nil {
			*status = -1
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	return stdout, stderr, exited, status
}

// A command started before its member waits for it, says so once, and
// succeeds once the member is up: "arbor dev & arbor create ..." works.
func TestCommandWaitsForMemberToComeUp(t *testing.T) {
	addr := deadAddr(t)
	stdout, stderr, done, code := startArbor(t, "create", "/late", "x", "--endpoints", addr, "--timeout", "60s")
	waiting := "arbor: waiting up to 1m0s for the cluster (" + addr + ": connection refused) ...\n"
	waitOutput(t, stderr, waiting, 20*time.Second)
	startDevAt(t, addr)
	select {
	case <-done:
		if *code != 0 || stdout.String() != "/late\n" || stderr.String() != waiting {
			t.Fatalf("create once the member was up: exit %d, stdout %q, stderr %q; want 0, /late and one waiting line",
				*code, stdout.String(), stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("create still waiting 60s after the member started; stderr %q", stderr.String())
	}
}

// With no member at all, the command gives up at --timeout naming the cause.
func TestCommandGivesUpAtTimeout(t *testing.T) {
	addr := deadAddr(t)
	start := time.Now()
	o := arbor(t, nil, "", "get", "/a", "--endpoints", addr, "--timeout", "1500ms")
	took := time.Since(start)
	want := "arbor: waiting up to 1.5s for the cluster (" + addr + ": connection refused) ...\n" +
		"UNAVAILABLE: " + addr + ": connection refused (gave up after 1.5s; --timeout waits longer)\n"
	if o.code != 1 || o.stderr != want {
		t.Fatalf("get with nothing there: exit %d, stderr %q; want 1 and %q", o.code, o.stderr, want)
	}
	if took < 1500*time.Millisecond {
		t.Fatalf("gave up after %v, before --timeout", took)
	}
}

// A member without a quorum: the cause is "no leader", not "cannot reach".
func TestCommandNamesNoLeader(t *testing.T) {
	addr, peer := deadAddr(t), deadAddr(t)
	cluster := "a=" + peer + ",b=" + deadAddr(t) + ",c=" + deadAddr(t)
	out, _, _, _ := startArbor(t, "server", "--name", "a", "--data-dir", filepath.Join(t.TempDir(), "a"),
		"--client-addr", addr, "--peer-addr", peer, "--gossip-addr", deadAddr(t), "--initial-cluster", cluster)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member not up within 20s; stdout %q", out.String())
		}
	}
	o := arbor(t, nil, "", "create", "/x", "--endpoints", addr, "--timeout", "1s")
	want := "UNAVAILABLE: " + addr + ": no leader: the cluster has no quorum right now (gave up after 1s; --timeout waits longer)\n"
	if o.code != 1 || !strings.HasSuffix(o.stderr, want) || strings.Contains(o.stderr, "cannot reach") {
		t.Fatalf("create without a quorum: exit %d, stderr %q; want 1 and %q", o.code, o.stderr, want)
	}
	if strings.Contains(out.String(), "ready") {
		t.Fatalf("a member without a quorum said it is ready: %q", out.String())
	}
}

// A member that accepts connections but never answers: "timed out".
func TestCommandNamesTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	})
	addr := ln.Addr().String()
	o := arbor(t, nil, "", "get", "/a", "--endpoints", addr, "--timeout", "1s")
	want := "UNAVAILABLE: " + addr + ": timed out (gave up after 1s; --timeout waits longer)\n"
	if o.code != 1 || !strings.HasSuffix(o.stderr, want) {
		t.Fatalf("get from a silent member: exit %d, stderr %q; want 1 and %q", o.code, o.stderr, want)
	}
}

// get prints data byte for byte into a pipe, and ends it with a newline on
// a terminal.
func TestGetNewlineOnTerminal(t *testing.T) {
	addr, _ := startDev(t)
	if o := arbor(t, nil, "", "create", "/t", "no newline", "--endpoints", addr); o.code != 0 {
		t.Fatalf("create: %+v", o)
	}
	if o := arbor(t, nil, "", "get", "/t", "--endpoints", addr); o.stdout != "no newline" {
		t.Fatalf("get into a pipe printed %q", o.stdout)
	}
	master, slave := openPTY(t)
	cmd := exec.Command(binary, "get", "/t", "--endpoints", addr)
	cmd.Env = cleanEnv()
	cmd.Stdout = slave
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var got []byte
	buf := make([]byte, 256)
	for {
		n, err := master.Read(buf) // EIO once the last writer is gone
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	// The terminal turns "\n" into "\r\n".
	if string(got) != "no newline\r\n" {
		t.Fatalf("get on a terminal printed %q", got)
	}
}

// openPTY opens a pseudo-terminal pair (Linux).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	name, err := ptsName(master)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(name, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}
