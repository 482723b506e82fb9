package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
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

// TestBenchInOrderPinsTheRun: with --in-order (or --no-discovery) and one
// endpoint every session of the run is on that member; without it the sessions spread over the
// members (so the first half can fail).
func TestBenchInOrderPinsTheRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-member cluster")
	}
	lc, err := bench.StartLocalCluster(t.Context(), binary, t.TempDir(), 3, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lc.Stop(context.WithoutCancel(t.Context())) })
	eps := lc.Endpoints()
	pinned := eps[1]
	sets := func() []int {
		t.Helper()
		n := make([]int, len(eps))
		for i, ep := range eps {
			n[i] = setsAnswered(t, ep)
		}
		return n
	}
	run := func(extra ...string) []int {
		t.Helper()
		before := sets()
		args := append([]string{"set", "--clients", "6", "--ops", "60", "--keys", "5", "--json", "--endpoints", pinned}, extra...)
		if _, stderr, err := runBenchCmd(t, args...); err != nil {
			t.Fatalf("arbor bench %v: %v\n%s", args, err, stderr)
		}
		after := sets()
		for i := range after {
			after[i] -= before[i]
		}
		return after
	}
	if n := run(); n[0]+n[2] == 0 {
		t.Fatalf("without --in-order sets answered per member %v: all on %s, want them spread", n, pinned)
	}
	for _, flag := range []string{"--in-order", "--no-discovery"} {
		if n := run(flag); n[1] != 60 || n[0]+n[2] != 0 {
			t.Errorf("with %s sets answered per member %v, want all 60 on member 2 (%s)", flag, n, pinned)
		}
	}
}

// setsAnswered reads a member's count of successful sets from its metrics.
func setsAnswered(t *testing.T, ep string) int {
	t.Helper()
	resp, err := http.Get("http://" + ep + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, `arbor_requests_total{code="OK",op="set"} `); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("%s: %q: %v", ep, line, err)
			}
			return n
		}
	}
	return 0
}
