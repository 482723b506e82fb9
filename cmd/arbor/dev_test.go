package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// devMember is an arbor dev process started by a test.
type devMember struct {
	addr    string
	out     *syncBuffer // stdout
	logPath string      // stderr
	stop    func() error
}

// startDev runs arbor dev on free loopback ports and waits until it says
// it is ready.
func startDev(t *testing.T) (addr string, stop func() error) {
	t.Helper()
	d := startDevAt(t, deadAddr(t))
	d.waitReady(t)
	return d.addr, d.stop
}

// startDevAt starts arbor dev with its client port on addr, without
// waiting for it.
func startDevAt(t *testing.T, addr string, extra ...string) *devMember {
	t.Helper()
	d := &devMember{addr: addr, out: &syncBuffer{}, logPath: filepath.Join(t.TempDir(), "dev.log")}
	logf, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"dev", "--client-addr", addr, "--peer-addr", deadAddr(t),
		"--gossip-addr", deadAddr(t), "--data-dir", filepath.Join(t.TempDir(), "data")}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = d.out, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); logf.Close() }()
	stopped := false
	d.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("arbor dev did not stop within 20s of SIGTERM")
		}
	}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			b, _ := os.ReadFile(d.logPath)
			t.Logf("arbor dev stdout:\n%s\nlog:\n%s", d.out.String(), b)
		}
	})
	return d
}

// waitReady waits for the ready line, and checks that /readyz, which
// knows whether the member can serve writes, agrees at that moment.
func (d *devMember) waitReady(t *testing.T) {
	t.Helper()
	want := "arbor dev: ready; clients connect to ws://" + d.addr + "/v1"
	waitOutput(t, d.out, want, 20*time.Second)
	resp, err := http.Get("http://" + d.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("arbor dev said it is ready, but /readyz answers %s", resp.Status)
	}
}

// waitOutput waits until b holds want.
func waitOutput(t *testing.T, b *syncBuffer, want string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !strings.Contains(b.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v; output so far: %q", want, timeout, b.String())
		}
	}
}

func TestDevEndToEnd(t *testing.T) {
	d := startDevAt(t, deadAddr(t))
	d.waitReady(t)
	addr, stop := d.addr, d.stop
	ep := "--endpoints=" + addr
	ok := func(stdin string, args ...string) string {
		t.Helper()
		o := arbor(t, nil, stdin, append(args, ep)...)
		if o.code != 0 || o.stderr != "" {
			t.Fatalf("arbor %v: exit %d, stderr %q", args, o.code, o.stderr)
		}
		return o.stdout
	}
	fails := func(code string, args ...string) outcome {
		t.Helper()
		o := arbor(t, nil, "", append(args, ep)...)
		if o.code != 1 || !strings.HasPrefix(o.stderr, code+": ") || strings.Count(o.stderr, "\n") != 1 {
			t.Fatalf("arbor %v: exit %d, stderr %q; want exit 1 and one line %q", args, o.code, o.stderr, code+": ...")
		}
		return o
	}

	if got := ok("", "create", "/a", "hello"); got != "/a\n" {
		t.Fatalf("create printed %q", got)
	}
	if got := ok("", "get", "/a"); got != "hello" {
		t.Fatalf("get printed %q, want the raw data", got)
	}
	if got := ok("world\n", "set", "/a", "-"); got != "" {
		t.Fatalf("set printed %q", got)
	}
	if got := ok("", "get", "/a"); got != "world\n" {
		t.Fatalf("get after set from stdin printed %q", got)
	}
	if o := fails("BAD_VERSION", "set", "/a", "x", "--version", "0"); o.stderr != "BAD_VERSION: /a is at version 1, not 0\n" {
		t.Fatalf("BAD_VERSION line %q does not name both versions", o.stderr)
	}
	fails("NODE_EXISTS", "create", "/a")
	ok("", "create", "/a/b")
	seq := ok("", "create", "--sequential", "/a/s-", "x")
	if !regexp.MustCompile(`^/a/s-\d{10}\n$`).MatchString(seq) {
		t.Fatalf("sequential create printed %q", seq)
	}
	if got, want := ok("", "ls", "/a"), "b\n"+strings.TrimPrefix(seq, "/a/"); got != want {
		t.Fatalf("ls printed %q, want %q", got, want)
	}
	st := ok("", "stat", "/a")
	for _, line := range []string{"version: 1\n", "num_children: 2\n", "data_length: 6\n", "ephemeral_owner: \n"} {
		if !strings.Contains(st, line) {
			t.Fatalf("stat printed %q, missing %q", st, line)
		}
	}
	// An ephemeral node is printed, held while the command runs, then gone
	// with the session.
	if o := arbor(t, nil, "", "create", "--ephemeral", ep, "/e", "--", "true"); o.code != 0 || o.stdout != "/e\n" {
		t.Fatalf("ephemeral create -- true: %+v", o)
	}
	fails("NO_NODE", "get", "/e")
	o := fails("NO_NODE", "get", "/nope")
	if !strings.Contains(o.stderr, "/nope") {
		t.Fatalf("NO_NODE line %q does not name the path", o.stderr)
	}
	members := ok("", "members")
	lines := strings.Split(strings.TrimSpace(members), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME CLIENT_URL PEER_URL ROLE ALIVE" {
		t.Fatalf("members printed %q", members)
	}
	if f := strings.Fields(lines[1]); len(f) != 5 || f[0] != "dev" || f[3] != "leader" || f[4] != "true" {
		t.Fatalf("members row %q", lines[1])
	}

	// --json prints the whole response with wire field names.
	var get wire.Response
	if err := json.Unmarshal([]byte(ok("", "get", "/a", "--json")), &get); err != nil {
		t.Fatal(err)
	}
	if !get.OK || string(get.Data) != "world\n" || get.Stat.Stat == nil || get.Stat.Stat.Version != 1 || get.Zxid == 0 {
		t.Fatalf("get --json = %+v", get)
	}
	var ms wire.Response
	if err := json.Unmarshal([]byte(ok("", "members", "--json")), &ms); err != nil || len(ms.Members) != 1 || ms.Members[0].Name != "dev" {
		t.Fatalf("members --json = %+v, %v", ms, err)
	}
	o = fails("NO_NODE", "get", "/nope", "--json")
	var failed wire.Response
	if err := json.Unmarshal([]byte(o.stdout), &failed); err != nil || failed.OK || failed.Error == nil || failed.Error.Code != wire.CodeNoNode {
		t.Fatalf("failed get --json printed %q", o.stdout)
	}

	// ls / leaves the server's /arbor out, unless --all.
	if got := ok("", "ls", "/"); got != "a\n" {
		t.Fatalf("ls / printed %q, want only a", got)
	}
	if got := ok("", "ls", "/", "--all"); got != "a\narbor\n" {
		t.Fatalf("ls / --all printed %q", got)
	}
	fails("NOT_EMPTY", "delete", "/a")
	fails("BAD_VERSION", "delete", "/a/b", "--version", "3")
	ok("", "delete", "/a", "--recursive")
	if got := ok("", "ls", "/"); slices.Contains(strings.Split(got, "\n"), "a") {
		t.Fatalf("ls / after delete printed %q", got)
	}
	fails("NO_NODE", "stat", "/a")

	if err := stop(); err != nil {
		t.Fatalf("arbor dev after SIGTERM: %v, want exit 0", err)
	}
	// It said one line when it stopped, and why; it logged nothing below
	// warn meanwhile.
	if want := "arbor dev: stopped (terminated signal received)"; strings.Count(d.out.String(), want) != 1 {
		t.Errorf("arbor dev stdout %q; want one %q", d.out.String(), want)
	}
	if b, err := os.ReadFile(d.logPath); err != nil || strings.Contains(string(b), "level=INFO") {
		t.Errorf("arbor dev logged at info by default (%v):\n%s", err, b)
	}
}
