package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building arbor:", err)
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
		{"bad version", nil, []string{"delete", "/a", "--version", "x"}, `invalid argument "x" for "--version"`},
		{"bad log level", nil, []string{"ls", "/", "--log-level", "loud"}, `invalid --log-level "loud"`},
		{"server without name", nil, []string{"server", "--data-dir", tmp}, "--name is required"},
		{"server without data dir", nil, []string{"server", "--name", "a"}, "--data-dir is required"},
		{"server bad client addr", nil, []string{"server", "--name", "a", "--data-dir", tmp, "--client-addr", "nope"}, `invalid --client-addr "nope"`},
		{"join", nil, []string{"server", "--name", "a", "--data-dir", tmp, "--join", "127.0.0.1:7402"}, "--join needs gossip, which this build does not have yet"},
		{"learner", nil, []string{"server", "--name", "a", "--data-dir", tmp, "--learner"}, "--learner applies only when joining"},
		{"bad env value", []string{"ARBOR_CLIENT_ADDR=garbage"}, []string{"server", "--name", "a", "--data-dir", tmp}, `invalid --client-addr "garbage"`},
		{"bad env bool", []string{"ARBOR_JSON=maybe"}, []string{"ls", "/"}, `invalid value "maybe" for --json (from ARBOR_JSON)`},
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

func TestEnvFallbacks(t *testing.T) {
	// Name, data dir and initial cluster all come from the environment:
	// the complaint is about the cluster, not a missing --name.
	o := arbor(t, []string{"ARBOR_NAME=a", "ARBOR_DATA_DIR=" + t.TempDir(), "ARBOR_INITIAL_CLUSTER=b=127.0.0.1:1"}, "", "server")
	if o.code != 2 || !strings.Contains(o.stderr, `does not name this member "a"`) {
		t.Fatalf("server from env: exit %d, stderr %q", o.code, o.stderr)
	}

	dead, other := deadAddr(t), deadAddr(t)
	o = arbor(t, []string{"ARBOR_ENDPOINTS=" + dead}, "", "get", "/a")
	if o.code != 1 || o.stderr != "UNAVAILABLE: cannot reach any of "+dead+"\n" {
		t.Fatalf("get from ARBOR_ENDPOINTS: exit %d, stderr %q", o.code, o.stderr)
	}
	// The command line wins over the environment.
	o = arbor(t, []string{"ARBOR_ENDPOINTS=" + dead}, "", "get", "/a", "--endpoints", other)
	if o.code != 1 || o.stderr != "UNAVAILABLE: cannot reach any of "+other+"\n" {
		t.Fatalf("--endpoints over ARBOR_ENDPOINTS: exit %d, stderr %q", o.code, o.stderr)
	}
}

func TestDefaultEndpoint(t *testing.T) {
	if l, err := net.Listen("tcp", "127.0.0.1:7400"); err != nil {
		t.Skip("something listens on 127.0.0.1:7400")
	} else {
		l.Close()
	}
	o := arbor(t, nil, "", "ls", "/")
	if o.code != 1 || o.stderr != "UNAVAILABLE: cannot reach any of 127.0.0.1:7400\n" {
		t.Fatalf("ls with no endpoints: exit %d, stderr %q", o.code, o.stderr)
	}
}
