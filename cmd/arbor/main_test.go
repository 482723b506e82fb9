package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/arbor-db/arbor/arbortest/proc"
)

// binary is the arbor binary, built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "arbor-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "arbor")
	if err := proc.Build(binary, "."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type outcome struct {
	code           int
	stdout, stderr string
}

// arbor runs the binary with args, extra environment variables and stdin.
func arbor(t *testing.T, env []string, stdin string, args ...string) outcome {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	o := outcome{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		o.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running arbor %v: %v", args, err)
	}
	return o
}

// cleanEnv is the test's environment without any ARBOR_ variable.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ARBOR_") {
			env = append(env, kv)
		}
	}
	return env
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestUsageErrorsExit2(t *testing.T) {
	tmp := t.TempDir()
	cases := []struct {
		name string
		env  []string
		args []string
		want string // on stderr
	}{
		{"unknown command", nil, []string{"frobnicate"}, "unknown command"},
		{"unknown flag", nil, []string{"ls", "--bogus", "/"}, "unknown flag: --bogus"},
		{"get without path", nil, []string{"get"}, "accepts 1 arg(s), received 0"},
		{"get with two paths", nil, []string{"get", "/a", "/b"}, "accepts 1 arg(s), received 2"},
		{"set without data", nil, []string{"set", "/a"}, "accepts 2 arg(s), received 1"},
		{"bad version", nil, []string{"delete", "/a", "--version", "x"}, `invalid --version "x": want a whole number`},
		{"bad timeout", nil, []string{"get", "/a", "--timeout", "soon"}, `invalid --timeout "soon": want a duration such as 500ms, 10s or 1m30s`},
		{"zero timeout", nil, []string{"get", "/a", "--timeout", "0s"}, `invalid --timeout 0s: want a positive duration`},
		{"endpoint without port", nil, []string{"get", "/a", "--endpoints", "127.0.0.1"}, `invalid --endpoints: bad endpoint "127.0.0.1": no port`},
		{"endpoint URL", nil, []string{"ls", "/", "--endpoints", "127.0.0.1:7400,http://127.0.0.1:7410"}, `bad endpoint "http://127.0.0.1:7410": want HOST:PORT without a scheme`},
		{"bad log level", nil, []string{"ls", "/", "--log-level", "loud"}, `invalid --log-level "loud"`},
		{"server without name", nil, []string{"server", "--data-dir", tmp}, "--name is required"},
		{"server without data dir", nil, []string{"server", "--name", "a"}, "--data-dir is required"},
		{"server bad client addr", nil, []string{"server", "--name", "a", "--data-dir", tmp, "--client-addr", "nope"}, `invalid --client-addr "nope"`},
		{"join and initial cluster", nil, []string{"server", "--name", "a", "--data-dir", tmp, "--join", "127.0.0.1:7402", "--initial-cluster", "a=127.0.0.1:7401"}, "cannot be combined"},
		{"learner", nil, []string{"server", "--name", "a", "--data-dir", tmp, "--learner"}, "--learner applies only when joining"},
		{"bad env value", []string{"ARBOR_CLIENT_ADDR=garbage"}, []string{"server", "--name", "a", "--data-dir", tmp}, `invalid --client-addr "garbage"`},
		{"bad env bool", []string{"ARBOR_JSON=maybe"}, []string{"ls", "/"}, `invalid value "maybe" for --json (from ARBOR_JSON): want true or false`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := arbor(t, tc.env, "", tc.args...)
			if o.code != 2 || !strings.Contains(o.stderr, tc.want) {
				t.Fatalf("arbor %v: exit %d, stderr %q; want exit 2 and %q", tc.args, o.code, o.stderr, tc.want)
			}
		})
	}
}

func TestInitialClusterParseErrors(t *testing.T) {
	tmp := t.TempDir()
	cases := []struct{ value, want string }{
		{"a", `entry "a": want NAME=PEERHOST:PORT`},
		{"a=", `entry "a=": want NAME=PEERHOST:PORT`},
		{"=127.0.0.1:1", `want NAME=PEERHOST:PORT`},
		{"a=127.0.0.1", `entry "a=127.0.0.1": want HOST:PORT`},
		{"a=127.0.0.1:http", `port "http" is not a port number`},
		{"a=127.0.0.1:0", `port "0" is not a port number`},
		{"a=127.0.0.1:1,,b=127.0.0.1:2", `entry "": want NAME=PEERHOST:PORT`},
		{"a=127.0.0.1:1,a=127.0.0.1:2", `member name "a" appears twice`},
		{"a=127.0.0.1:1,b=127.0.0.1:1", `peer address 127.0.0.1:1 appears twice`},
		{"b=127.0.0.1:1,c=127.0.0.1:2", `does not name this member "a"`},
	}
	for _, tc := range cases {
		o := arbor(t, nil, "", "server", "--name", "a", "--data-dir", tmp, "--initial-cluster", tc.value)
		if o.code != 2 || !strings.Contains(o.stderr, "invalid --initial-cluster: ") || !strings.Contains(o.stderr, tc.want) {
			t.Errorf("--initial-cluster %q: exit %d, stderr %q; want exit 2 and %q", tc.value, o.code, o.stderr, tc.want)
		}
	}
}

// The usage line of the command that was misused follows the error.
func TestUsageErrorsPrintTheCommandsUsage(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"get"}, "Usage: arbor get PATH [--watch] [flags]\nRun 'arbor get --help' for more.\n"},
		{[]string{"set", "/a", "--version", "abc"}, "Usage: arbor set PATH DATA [--version N] [flags]\n"},
		{[]string{"ls", "/", "--bogus"}, "Usage: arbor ls PATH [--all] [flags]\n"},
		{[]string{"members", "extra"}, "Usage: arbor members [flags]\n"},
		{[]string{"frobnicate"}, "Run 'arbor --help' for usage.\n"},
	}
	for _, tc := range cases {
		o := arbor(t, nil, "", tc.args...)
		if o.code != 2 || !strings.HasPrefix(o.stderr, "Error: ") || !strings.Contains(o.stderr, tc.want) {
			t.Errorf("arbor %v: exit %d, stderr %q; want exit 2 with %q", tc.args, o.code, o.stderr, tc.want)
		}
	}
}

// The gossip flags are offered, and their misuse is wrong usage naming the
// flag.
func TestGossipFlags(t *testing.T) {
	help := arbor(t, nil, "", "server", "--help").stdout
	for _, flag := range []string{"--join", "--learner", "--gossip-addr", "--gossip-key", "--gossip-key-file"} {
		if !strings.Contains(help, flag) {
			t.Errorf("arbor server --help lacks %s", flag)
		}
	}
	tmp := t.TempDir()
	base := []string{"server", "--name", "a", "--data-dir", tmp}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--learner"}, "--learner applies only when joining"},
		{[]string{"--join", "127.0.0.1:7402", "--initial-cluster", "a=127.0.0.1:1"}, "cannot be combined"},
		{[]string{"--join", "nohost"}, "invalid --join"},
		{[]string{"--gossip-key", "not base64!"}, "not base64"},
		{[]string{"--gossip-key", "c2hvcnQ="}, "16, 24 or 32 bytes"},
		{[]string{"--gossip-key-file", "/nonexistent/key"}, "invalid --gossip-key-file"},
	} {
		o := arbor(t, nil, "", append(base, tc.args...)...)
		if o.code != 2 || !strings.Contains(o.stderr, tc.want) {
			t.Errorf("arbor server %v: exit %d, stderr %q; want exit 2 with %q", tc.args, o.code, o.stderr, tc.want)
		}
	}
}

// A busy port at start-up names its flag; it is not an INTERNAL error.
func TestBusyPortNamesTheFlag(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	for _, flag := range []string{"--client-addr", "--peer-addr"} {
		args := []string{"dev", "--data-dir", t.TempDir(), "--client-addr", deadAddr(t), "--peer-addr", deadAddr(t), flag, addr}
		o := arbor(t, nil, "", args...)
		want := "Error: " + flag + " " + addr + " is in use"
		if o.code != 2 || !strings.HasPrefix(o.stderr, want) || strings.Contains(o.stderr, "INTERNAL") {
			t.Errorf("dev %s busy: exit %d, stderr %q; want exit 2 and %q", flag, o.code, o.stderr, want)
		}
	}
}

func TestEnvFallbacks(t *testing.T) {
	// Name, data dir and initial cluster all come from the environment:
	// the complaint is about the cluster, not a missing --name.
	o := arbor(t, []string{"ARBOR_NAME=a", "ARBOR_DATA_DIR=" + t.TempDir(), "ARBOR_INITIAL_CLUSTER=b=127.0.0.1:1"}, "", "server")
	if o.code != 2 || !strings.Contains(o.stderr, `does not name this member "a"`) {
		t.Fatalf("server from env: exit %d, stderr %q", o.code, o.stderr)
	}

	dead, other := deadAddr(t), deadAddr(t)
	o = arbor(t, []string{"ARBOR_ENDPOINTS=" + dead, "ARBOR_TIMEOUT=100ms"}, "", "get", "/a")
	if o.code != 1 || !strings.HasPrefix(o.stderr, "UNAVAILABLE: "+dead+": connection refused") {
		t.Fatalf("get from ARBOR_ENDPOINTS: exit %d, stderr %q", o.code, o.stderr)
	}
	// The command line wins over the environment.
	o = arbor(t, []string{"ARBOR_ENDPOINTS=" + dead, "ARBOR_TIMEOUT=100ms"}, "", "get", "/a", "--endpoints", other)
	if o.code != 1 || !strings.HasPrefix(o.stderr, "UNAVAILABLE: "+other+": connection refused") {
		t.Fatalf("--endpoints over ARBOR_ENDPOINTS: exit %d, stderr %q", o.code, o.stderr)
	}
}

// The default endpoint and timeout are what docs/cli.md says, and --help
// shows them. (Asked of --help rather than by dialling 127.0.0.1:7400,
// which another test, or a member on this machine, may be using.)
func TestDefaults(t *testing.T) {
	help := arbor(t, nil, "", "get", "--help").stdout
	for _, want := range []string{`--endpoints string   members to try, HOST:PORT,... (default "127.0.0.1:7400")`, "(default 10s)"} {
		if !strings.Contains(help, want) {
			t.Errorf("get --help lacks %q:\n%s", want, help)
		}
	}
}

func TestVersion(t *testing.T) {
	o := arbor(t, nil, "", "version")
	lines := strings.Split(o.stdout, "\n")
	if o.code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "version: ") ||
		!strings.HasPrefix(lines[1], "commit: ") || lines[2] != "go: "+runtime.Version() {
		t.Fatalf("arbor version: exit %d, stdout %q", o.code, o.stdout)
	}
	var v map[string]string
	if o := arbor(t, nil, "", "version", "--json"); json.Unmarshal([]byte(o.stdout), &v) != nil || v["go_version"] != runtime.Version() || v["commit"] == "" {
		t.Fatalf("arbor version --json: %q", o.stdout)
	}
}

// arbor completion is cobra's, for every shell it knows.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		if o := arbor(t, nil, "", "completion", shell); o.code != 0 || !strings.Contains(o.stdout, "arbor") {
			t.Errorf("arbor completion %s: exit %d, stderr %q", shell, o.code, o.stderr)
		}
	}
}
