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

// startDev runs arbor dev on free loopback ports and waits until it is ready.
func startDev(t *testing.T) (addr string, stop func() error) {
	t.Helper()
	addr, peer, gossip := deadAddr(t), deadAddr(t), deadAddr(t)
	logPath := filepath.Join(t.TempDir(), "dev.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd := exec.Command(binary, "dev", "--client-addr", addr, "--peer-addr", peer,
		"--gossip-addr", gossip, "--data-dir", filepath.Join(t.TempDir(), "data"))
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = &out, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); logf.Close() }()
	stopped := false
	stop = func() error {
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
		stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("arbor dev stdout:\n%s\nlog:\n%s", out.String(), b)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("arbor dev not ready within 20s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if want := "clients connect to ws://" + addr + "/v1"; !strings.Contains(out.String(), want) {
		t.Errorf("arbor dev said %q; want it to say %q", out.String(), want)
	}
	return addr, stop
}

func TestDevEndToEnd(t *testing.T) {
	addr, stop := startDev(t)
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
	fails("BAD_VERSION", "set", "/a", "x", "--version", "0")
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
}
