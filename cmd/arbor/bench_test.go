package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/arbor-db/arbor/client/bench"
)

// runBenchCmd runs `arbor bench args...` in process; started clusters run
// the binary TestMain built.
func runBenchCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newBenchCommand()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(append(args, "--server-binary", binary))
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err = cmd.ExecuteContext(t.Context())
	return out.String(), errb.String(), err
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"nosuchworkload"},
		{"set", "--clients", "0"},
		{"lock", "--path", "locks/a"},
		{"lock", "--path", "/"},
	} {
		_, _, err := runBenchCmd(t, args...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitUsage {
			t.Errorf("arbor bench %v: err %v, want a usage error", args, err)
		}
	}
}

func TestBenchHelpListsWorkloads(t *testing.T) {
	long := newBenchCommand().Long
	for _, w := range []string{"create", "set", "get", "get-local", "multi", "sessions", "failover", "lock"} {
		if !strings.Contains(long, "  "+w+" ") {
			t.Errorf("help does not list %s:\n%s", w, long)
		}
	}
}

func TestBenchAgainstAStartedCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 3-member clusters")
	}
	for _, tt := range []struct {
		args []string
		ops  int64
	}{
		{[]string{"set", "--clients", "4", "--ops", "60", "--keys", "10"}, 60},
		{[]string{"get", "--local", "--clients", "2", "--ops", "40", "--keys", "10"}, 40},
		{[]string{"failover", "--ops", "1"}, 1},
		{[]string{"sessions", "--sessions", "30", "--clients", "3"}, 30},
		{[]string{"lock", "--clients", "3", "--ops", "50", "--path", "/locks/a"}, 50},
		{[]string{"elect-failover", "--ops", "2", "--session-timeout", "2s"}, 2},
	} {
		t.Run(tt.args[0], func(t *testing.T) {
			out, stderr, err := runBenchCmd(t, append(tt.args, "--json", "--start-cluster")...)
			if err != nil {
				t.Fatalf("arbor bench %v: %v\nstderr:\n%s", tt.args, err, stderr)
			}
			t.Logf("arbor bench %v:\n%s%s", tt.args, stderr, out)
			var res bench.Result
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("output is not one JSON result: %v\n%s", err, out)
			}
			if res.System != "arbor" || res.Ops != tt.ops || res.Errors != 0 || res.P50Ms <= 0 {
				t.Fatalf("result %+v: want %d ops, no errors", res, tt.ops)
			}
			if tt.args[0] == "sessions" && (res.MemBeforeBytes == 0 || res.MemAfterBytes == 0) {
				t.Errorf("sessions reported no member memory: %+v", res)
			}
			if tt.args[0] == "elect-failover" && (res.SessionTimeoutMs != 2000 || res.P50Ms < 1000) {
				t.Errorf("elected %.0f ms after the kill with a session timeout of %.0f ms; want 2000 ms, and an election no sooner than half of it", res.P50Ms, res.SessionTimeoutMs)
			}
			if !strings.Contains(stderr, " ops (") && !strings.Contains(stderr, "first write") && !strings.Contains(stderr, "elected") {
				t.Errorf("no progress line on stderr:\n%s", stderr)
			}
		})
	}
}
