package arbor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The README's shell blocks are what a newcomer pastes first, so they are
// run here as written: in a copy of the checkout, in one bash session (as
// one terminal), with their &s and nothing added between them but lines
// that file away each command's output and exit status. Every command's
// outcome is checked against want below, which must list every command of
// every block, in order: a README change without a matching change here
// fails, instead of going stale.
//
// The first block is the exception: its two commands are alternatives for
// a terminal, not a script. Its first runs until interrupted, so it is run
// alone until it says it is ready and then interrupted as Ctrl-C would;
// its second is ./test.sh, which runs this very test (and CI runs it,
// .ci/run): here it is only checked to be there.

// outcome is what one README command must do. The zero value: exit 0 and
// print nothing. A command started with & exits 0 at once; its output is
// checked once the session has been stopped (SIGTERM to its process
// group), so it holds everything the member said until it stopped.
type outcome struct {
	code   int
	stdout string // a regexp that must match the whole of stdout
	stderr string // a regexp that must match the whole of stderr, after any waiting line
}

// anyWarnings: members stopped together warn that they could not hand
// leadership over, or lost their quorum; at --log-level warn, nothing else.
const anyWarnings = `(time=\S+ level=(WARN|ERROR) .*\n)*`

// waitingLine is what a client command may print while a member it was
// pointed at comes up (cmd/arbor's dialCluster).
const waitingLine = `(arbor: waiting up to \S+ for the cluster \(.*\) \.\.\.\n)?`

var want = map[string]outcome{
	// The first block (see above).
	"go run ./cmd/arbor dev      # run a single-member Arbor on 127.0.0.1:7400, data in ./arbor-data": {},
	"./test.sh                   # run the tests: gofmt, go vet, staticcheck, go test -race ./...":    {},

	"go build -o arbor ./cmd/arbor": {},
	"./arbor dev &": {
		stdout: `arbor dev: ready; clients connect to ws://127\.0\.0\.1:7400/v1 .*\n` +
			`arbor dev: stopped \(terminated signal received\); data kept in \./arbor-data\n`},
	`./arbor create /config '{"replicas": 3}'`:                   {stdout: `/config\n`},
	"./arbor get /config":                                        {stdout: `\{"replicas": 3\}`}, // raw: no newline into a pipe
	`./arbor set /config '{"replicas": 5}' --version 0`:          {},
	"./arbor stat /config":                                       {stdout: `(?s)czxid: \d+\n.*\nversion: 1\n.*data_length: 15\n.*`},
	"./arbor ls /":                                               {stdout: `config\n`},
	"./arbor delete /config":                                     {},
	"CLUSTER=a=127.0.0.1:7411,b=127.0.0.1:7421,c=127.0.0.1:7431": {},
	"./arbor server --name a --data-dir arbor-a --log-level warn --client-addr 127.0.0.1:7410 --peer-addr 127.0.0.1:7411 --gossip-addr 127.0.0.1:7412 --initial-cluster $CLUSTER &": {
		stdout: `arbor server a: ready; clients connect to ws://127\.0\.0\.1:7410/v1\narbor server a: stopped .*\n`, stderr: anyWarnings},
	"./arbor server --name b --data-dir arbor-b --log-level warn --client-addr 127.0.0.1:7420 --peer-addr 127.0.0.1:7421 --gossip-addr 127.0.0.1:7422 --initial-cluster $CLUSTER &": {
		stdout: `arbor server b: ready; clients connect to ws://127\.0\.0\.1:7420/v1\narbor server b: stopped .*\n`, stderr: anyWarnings},
	"./arbor server --name c --data-dir arbor-c --log-level warn --client-addr 127.0.0.1:7430 --peer-addr 127.0.0.1:7431 --gossip-addr 127.0.0.1:7432 --initial-cluster $CLUSTER &": {
		stdout: `arbor server c: ready; clients connect to ws://127\.0\.0\.1:7430/v1\narbor server c: stopped .*\n`, stderr: anyWarnings},
	"export ARBOR_ENDPOINTS=127.0.0.1:7410,127.0.0.1:7420,127.0.0.1:7430": {},
	"./arbor members": {stdout: `NAME +CLIENT_URL +PEER_URL +ROLE +ALIVE\na +\S+ +127\.0\.0\.1:7411 .*\nb +\S+ +127\.0\.0\.1:7421 .*\nc +\S+ +127\.0\.0\.1:7431 .*\n`},
	"./arbor create /service/web ''        # fails: NO_NODE, /service does not exist": {
		code: 1, stderr: `NO_NODE: the parent of /service/web does not exist\n`},
	"./arbor create /service ''":       {stdout: `/service\n`},
	"./arbor create /service/web 'v1'": {stdout: `/service/web\n`},
	"./arbor --endpoints 127.0.0.1:7430 get /service/web   # read through another member": {stdout: `v1`},
	"source <(./arbor completion bash)":                                                   {},
	"./arbor server --name d --data-dir arbor-d --log-level warn --client-addr 127.0.0.1:7440 --peer-addr 127.0.0.1:7441 --gossip-addr 127.0.0.1:7442 --join 127.0.0.1:7412 &": {
		stdout: `arbor server d: ready; clients connect to ws://127\.0\.0\.1:7440/v1\narbor server d: stopped .*\n`, stderr: anyWarnings},
	"./arbor --endpoints 127.0.0.1:7440 get /service/web   # answers once d is in the cluster": {stdout: `v1`, stderr: waitingLine},
	"./arbor member list":         {stdout: `NAME +CLIENT_URL +PEER_URL +ROLE +ALIVE\na +.*\nb +.*\nc +.*\nd +127\.0\.0\.1:7440 +127\.0\.0\.1:7441 +(learner|follower) +true\n`},
	"./arbor create /services ''": {stdout: `/services\n`},
	`./arbor create --ephemeral --sequential /services/web- '127.0.0.1:8080' -- sh -c 'echo "registered as $ARBOR_NODE"; sleep 2'`: {
		stdout: `/services/web-0000000000\nregistered as /services/web-0000000000\n`},
	"./arbor ls /services      # empty again: the node went with the command": {},
	`./arbor lock /jobs/nightly -- sh -c 'echo "holding /jobs/nightly with fencing token $ARBOR_LOCK_TOKEN"'`: {
		stdout: `holding /jobs/nightly with fencing token \d+\n`},
	"./arbor elect /services/scheduler 'host-a:9000' -- ./arbor leader /services/scheduler": {
		stdout: `host-a:9000 \(session [0-9a-f]{16}, token \d+\)\n`},
}

// readmePorts are the ports the README's members listen on (gossip ones
// included: a later build binds them).
var readmePorts = []int{7400, 7401, 7402, 7410, 7411, 7412, 7420, 7421, 7422, 7430, 7431, 7432, 7440, 7441, 7442}

func TestReadmeShellBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds arbor and runs members: not with -short")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash here")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := shellBlocks(string(readme))
	if len(blocks) < 2 {
		t.Fatalf("README.md has %d sh blocks; want the quick start and more", len(blocks))
	}
	// The first two commands of the README, in its first block.
	if len(blocks[0]) != 2 || command(blocks[0][0]) != "go run ./cmd/arbor dev" || command(blocks[0][1]) != "./test.sh" {
		t.Fatalf("the README's first block is %q; want go run ./cmd/arbor dev, then ./test.sh", blocks[0])
	}
	for _, b := range blocks {
		for _, c := range b {
			if _, ok := want[c]; !ok {
				t.Errorf("README command %q has no outcome in readme_test.go's want", c)
			}
		}
	}
	if t.Failed() {
		return
	}
	checkPortsFree(t)
	dir := copyCheckout(t)

	if fi, err := os.Stat(filepath.Join(dir, "test.sh")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("./test.sh is not an executable file in the checkout (%v)", err)
	}
	runUntilReady(t, dir, blocks[0][0], "arbor dev: ready")

	var cmds []string
	for _, b := range blocks[1:] {
		cmds = append(cmds, b...)
	}
	results := runSession(t, dir, cmds)
	for i, c := range cmds {
		w, r := want[c], results[i]
		if r.code != w.code {
			t.Errorf("%s\nexit %d, want %d; stdout %q, stderr %q", c, r.code, w.code, r.stdout, r.stderr)
			continue
		}
		if !matchAll(w.stdout, r.stdout) {
			t.Errorf("%s\nstdout %q, want it to match %q (stderr %q)", c, r.stdout, w.stdout, r.stderr)
		}
		if stderr := w.stderr; !matchAll(waitingLine+stderr, r.stderr) {
			t.Errorf("%s\nstderr %q, want it to match %q", c, r.stderr, stderr)
		}
	}
}

// shellBlocks returns the commands of each ```sh block: one per line, with
// backslash continuations joined, blank and comment lines left out.
func shellBlocks(md string) [][]string {
	var blocks [][]string
	var cur []string
	in, pending := false, ""
	for line := range strings.SplitSeq(md, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, cur)
		case in:
			if cont, ok := strings.CutSuffix(line, `\`); ok {
				pending += cont
				continue
			}
			line = strings.TrimSpace(pending + strings.TrimLeft(line, " \t"))
			pending = ""
			if line != "" && !strings.HasPrefix(line, "#") {
				cur = append(cur, line)
			}
		}
	}
	return blocks
}

// command is line without its trailing comment.
func command(line string) string {
	c, _, _ := strings.Cut(line, " #")
	return strings.TrimSpace(c)
}

func matchAll(re, s string) bool {
	return regexp.MustCompile(`^(?:` + re + `)$`).MatchString(s)
}

// checkPortsFree fails (in CI) or skips (elsewhere) when a README port is
// taken: the blocks name fixed ports, as a user's terminal would.
func checkPortsFree(t *testing.T) {
	t.Helper()
	for _, p := range readmePorts {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("port %d, which the README uses, is taken: %v", p, err)
			}
			t.Skipf("port %d, which the README uses, is taken (%v): skipped outside CI", p, err)
		}
		l.Close()
	}
}

// copyCheckout copies the files git knows of (tracked, or new and not
// ignored) into a temp dir, as a fresh clone would have them.
func copyCheckout(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("listing the checkout's files needs git: %v", err)
	}
	dir := t.TempDir()
	for name := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		fi, err := os.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the work tree
		}
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// readmeEnv is the test's environment without ARBOR_ variables (the
// blocks set their own) and without CI's shell settings.
func readmeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ARBOR_") && !strings.HasPrefix(kv, "BASH_ENV=") {
			env = append(env, kv)
		}
	}
	return env
}

// runUntilReady runs command in dir until its stdout says ready, then
// interrupts its process group as Ctrl-C in a terminal would; it must stop
// cleanly (exit 0).
func runUntilReady(t *testing.T, dir, command, ready string) {
	t.Helper()
	cmd := exec.Command("bash", "-c", command)
	cmd.Dir, cmd.Env = dir, readmeEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopGroup(t, cmd.Process.Pid)
	deadline := time.After(3 * time.Minute) // it compiles arbor first
	for !strings.Contains(out.String(), ready) {
		select {
		case err := <-exited:
			t.Fatalf("%s exited (%v) before it said %q; stdout %q, stderr %q", command, err, ready, out.String(), errb.String())
		case <-deadline:
			t.Fatalf("%s did not say %q within 3 minutes; stdout %q, stderr %q", command, ready, out.String(), errb.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-exited:
		// go run's own exit status is not the program's (go help run):
		// after an interrupt it is 1 whatever the program did. The
		// member's last line says that it stopped cleanly.
		if !strings.Contains(out.String(), "arbor dev: stopped (interrupt signal received)") || errb.String() != "" {
			t.Errorf("%s after Ctrl-C: stdout %q, stderr %q; want the stopped line and nothing on stderr", command, out.String(), errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s still running 30s after SIGINT", command)
	}
}

// stopGroup SIGTERMs a process group, waits (bounded) until every member
// of it has gone, and SIGKILLs what is left.
func stopGroup(t *testing.T, pgid int) {
	t.Helper()
	if syscall.Kill(-pgid, syscall.SIGTERM) != nil {
		return // already gone
	}
	for deadline := time.Now().Add(30 * time.Second); syscall.Kill(-pgid, 0) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("process group %d still there 30s after SIGTERM; killing it", pgid)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		}
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// runSession runs cmds as one bash script in dir, each command verbatim on
// a line of its own; the lines between them only redirect the next
// command's output to files and record the last one's exit status. Once
// the script is done, its process group (the members started with &) is
// stopped and their output read.
func runSession(t *testing.T, dir string, cmds []string) []result {
	t.Helper()
	outDir := t.TempDir()
	var script strings.Builder
	for i, c := range cmds {
		fmt.Fprintf(&script, "exec >%q 2>%q\n%s\necho $? >%q\n",
			filepath.Join(outDir, fmt.Sprint(i, ".out")), filepath.Join(outDir, fmt.Sprint(i, ".err")),
			c, filepath.Join(outDir, fmt.Sprint(i, ".rc")))
	}
	scriptPath := filepath.Join(outDir, "readme.sh")
	if err := os.WriteFile(scriptPath, []byte(script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", scriptPath)
	cmd.Dir, cmd.Env = dir, readmeEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &errb
	err := cmd.Run()
	stopGroup(t, cmd.Process.Pid)
	if err != nil {
		t.Fatalf("the README session failed: %v\n%s", err, errb.String())
	}
	results := make([]result, len(cmds))
	for i, c := range cmds {
		read := func(ext string) string {
			b, err := os.ReadFile(filepath.Join(outDir, fmt.Sprint(i, ext)))
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			return string(b)
		}
		results[i] = result{stdout: read(".out"), stderr: read(".err")}
		if _, err := fmt.Sscan(read(".rc"), &results[i].code); err != nil {
			t.Fatalf("%s: exit status: %v", c, err)
		}
	}
	return results
}

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

// The README points only at files in the repository (a fresh clone has no
// ../shared), and each of them exists.
func TestReadmeLinksStayInTheRepository(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile("\\]\\(([^)]+)\\)|`([A-Za-z0-9_./-]+\\.(?:md|go|sh)|\\.ci/[a-z-]+)`").FindAllStringSubmatch(string(readme), -1)
	if len(refs) == 0 {
		t.Fatal("found no file references in README.md")
	}
	for _, m := range refs {
		ref := m[1] + m[2]
		if strings.HasPrefix(ref, "../") || strings.Contains(ref, "://") {
			t.Errorf("README.md points outside the repository: %s", ref)
			continue
		}
		if _, err := os.Stat(ref); err != nil {
			t.Errorf("README.md refers to %s: %v", ref, err)
		}
	}
}
