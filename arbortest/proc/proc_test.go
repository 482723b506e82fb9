package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arbor-db/arbor/client/wire"
)

// binary is the arbor binary built once for the package (without -race:
// the members are not what these tests test).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "arbor-proc-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "arbor")
	if err := Build(binary, "../../cmd/arbor"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestMajorityLeader(t *testing.T) {
	view := func(roles ...string) []wire.Member {
		var ms []wire.Member
		for i, r := range roles {
			ms = append(ms, wire.Member{Name: fmt.Sprintf("m%d", i+1), Role: r})
		}
		return ms
	}
	const L, F, N = wire.RoleLeader, wire.RoleFollower, wire.RoleLearner
	for _, tc := range []struct {
		name  string
		views [][]wire.Member
		want  string // "" for none
	}{
		{"one member", [][]wire.Member{view(L)}, "m1"},
		{"all agree", [][]wire.Member{view(L, F, F), view(L, F, F), view(L, F, F)}, "m1"},
		{"two of three agree", [][]wire.Member{view(L, F, F), view(L, F, F), view(F, L, F)}, "m1"},
		{"one answer of three voters", [][]wire.Member{view(L, F, F)}, ""},
		{"split", [][]wire.Member{view(L, F, F, F), view(L, F, F, F), view(F, L, F, F), view(F, L, F, F)}, ""},
		{"learners do not count", [][]wire.Member{view(L, F, N, N), view(L, F, N, N)}, "m1"},
		{"nobody knows", [][]wire.Member{view(F, F, F), view(F, F, F)}, ""},
		{"no answers", nil, ""},
		// A stale answer counting more voters makes the majority larger.
		{"largest view counts", [][]wire.Member{view(L, F, F), view(L, F, F, F, F)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := majorityLeader(tc.views)
			if tc.want == "" {
				if !errors.Is(err, ErrNoLeader) {
					t.Fatalf("majorityLeader = %q, %v; want ErrNoLeader", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("majorityLeader = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestOptionsMissingAreErrors(t *testing.T) {
	ok := Options{Binary: binary, Dir: t.TempDir(), N: 1}
	for _, tc := range []struct {
		name string
		edit func(o *Options)
		want string
	}{
		{"binary", func(o *Options) { o.Binary = "" }, "Options.Binary"},
		{"dir", func(o *Options) { o.Dir = "" }, "Options.Dir"},
		{"members", func(o *Options) { o.N = 0 }, "Options.N"},
	} {
		o := ok
		tc.edit(&o)
		if _, err := StartCluster(t.Context(), o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: StartCluster: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
}

// hold listens on a free port of 127.0.0.1 until the test ends.
func hold(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// A cluster one of whose picked ports is taken before the member binds it
// starts again on new ports; a member restarted while its own port is
// taken is started again once it is free; the waits and the leader work
// on what the members report.
func TestClusterStartsDespiteTakenPorts(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	taken := hold(t)
	c, err := newCluster(Options{Binary: binary, Dir: t.TempDir(), N: 3})
	if err != nil {
		t.Fatal(err)
	}
	picks := 0
	c.pick = func(host string, n int) ([]int, error) {
		picks++
		ports, err := freePorts(host, n)
		if picks == 2 && err == nil {
			ports[1] = taken.Addr().(*net.TCPAddr).Port // m2's peer port
		}
		return ports, err
	}
	t.Cleanup(func() {
		c.KillAll()
		if t.Failed() {
			t.Log(c.LogTails(30))
		}
	})
	if err := c.startAll(ctx); err != nil {
		t.Fatal(err)
	}
	if picks != 6 {
		t.Fatalf("ports picked %d times, want 6: three members, twice", picks)
	}
	if c.Members[1].PeerAddr == taken.Addr().String() {
		t.Fatalf("m2 runs on the taken port %s", taken.Addr())
	}

	l, err := c.WaitLeader(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.Dial(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.Create(ctx, "/x", nil); err != nil {
		t.Fatal(err)
	}
	_ = cl.Close(ctx)

	// Member f restarts while another process holds its client port.
	f := (l + 1) % 3
	c.Kill(f)
	ln, err := net.Listen("tcp", c.Members[f].ClientAddr)
	if err != nil {
		t.Fatalf("taking %s's client port: %v", c.Members[f].Name, err)
	}
	if err := c.Start(f); err != nil {
		t.Fatal(err)
	}
	if err := c.Members[f].Wait(20 * time.Second); err == nil || !c.Members[f].portInUse() {
		t.Fatalf("%s on a taken port: exit %v, log %q; want a failure saying the port is in use", c.Members[f].Name, err, c.Members[f].Tail(3))
	}
	ln.Close()
	if err := c.WaitReady(ctx, f, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := c.WaitSettled(ctx, f, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := c.State(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if st.Applied < ls.Commit-1 || st.Nodes < 2 { // "/" and "/x"; the leader may have committed one more since
		t.Fatalf("settled state %+v, leader's %+v", st, ls)
	}

	if err := c.Members[l].Pause(); err != nil {
		t.Fatal(err)
	}
	if !c.Members[l].Paused() {
		t.Fatal("a paused member does not say so")
	}
	nl, err := c.WaitLeader(ctx, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if nl == l {
		t.Fatalf("the paused %s is the leader", c.Members[l].Name)
	}
	if err := c.StopAll(ctx, 15*time.Second); err != nil {
		t.Fatalf("stopping every member (the paused one too): %v", err)
	}
	for _, m := range c.Members {
		if m.Running() || m.PID() != 0 {
			t.Fatalf("%s still runs after StopAll", m.Name)
		}
	}
}

// A member that exits for another reason than a taken port is an error
// at once, with its log.
func TestStartReportsAMemberThatExits(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := StartCluster(ctx, Options{Binary: binary, Dir: t.TempDir(), N: 1, Args: []string{"--no-such-flag"}})
	if err == nil || errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "exited while waiting") || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("StartCluster with a bad flag: %v; want the exit and the log saying why", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("the failure took %v to report", d)
	}
}
