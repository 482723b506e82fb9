package proc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrPortInUse is returned when members kept finding their ports taken.
var ErrPortInUse = errors.New("proc: a member's address was in use")

// startAttempts bounds how often StartCluster picks new ports.
const startAttempts = 3

// Options says how to start a cluster. Binary, Dir and N are required.
type Options struct {
	Binary string // the arbor executable
	// Dir holds each member's data dir (Dir/NAME) and log (Dir/NAME.log).
	Dir string
	N   int // members bootstrapped together, m1 ... mN

	Args       []string             // flags for every member
	MemberArgs func(i int) []string // flags for member i only (nil: none)
	// Host is the IP member i listens on (nil: 127.0.0.1). Members added
	// later name theirs.
	Host func(i int) string
	// DataDir is member i's data dir when it returns one ("": Dir/NAME).
	DataDir func(i int) string
	// Prepare runs once the member's data dir exists, before its first
	// start (and again if the cluster is started over on new ports): to
	// chown the dir or set m.SysProcAttr.
	Prepare func(m *Member) error
	// Env is the members' environment; nil is this process's without the
	// ARBOR_* variables, which are settings of the tests or the bench.
	Env []string
	// ReadyWithin bounds the wait for each member's /readyz (0: 30s).
	ReadyWithin time.Duration
	Logger      *slog.Logger // nil: discard
}

// Cluster is a set of arbor server processes. Its methods are called from
// one goroutine, except that Members' process state (Running, PID ...)
// may be read from any.
type Cluster struct {
	// Members are the members in the order they were started or added. A
	// test may reslice it to forget removed members.
	Members []*Member

	opts Options
	log  *slog.Logger
	// pick returns n free ports on host; a test replaces it.
	pick func(host string, n int) ([]int, error)
}

// StartCluster starts opts.N members bootstrapped together and returns
// once every one is ready. On an error every member started is killed.
func StartCluster(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := newCluster(opts)
	if err != nil {
		return nil, err
	}
	if err := c.startAll(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func newCluster(opts Options) (*Cluster, error) {
	switch {
	case opts.Binary == "":
		return nil, errors.New("proc: Options.Binary is empty: which arbor executable to run")
	case opts.Dir == "":
		return nil, errors.New("proc: Options.Dir is empty: where the data dirs and logs go")
	case opts.N < 1:
		return nil, fmt.Errorf("proc: Options.N is %d: a cluster needs at least one member", opts.N)
	}
	if opts.ReadyWithin == 0 {
		opts.ReadyWithin = 30 * time.Second
	}
	if opts.Env == nil {
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "ARBOR_") {
				opts.Env = append(opts.Env, kv)
			}
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cluster{opts: opts, log: log, pick: freePorts}, nil
}

// startAll makes the members on fresh ports and starts them, over again
// on new ports when an address was taken in between.
func (c *Cluster) startAll(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := c.tryStart(ctx)
		if err == nil {
			return nil
		}
		c.KillAll()
		if !errors.Is(err, ErrPortInUse) || attempt == startAttempts {
			return err
		}
		c.log.Warn("a port of the cluster was taken before its member bound it; starting again on new ports", "attempt", attempt, "err", err)
		for _, m := range c.Members {
			if err := m.empty(); err != nil {
				return err
			}
		}
	}
}

func (c *Cluster) tryStart(ctx context.Context) error {
	c.Members = nil
	var initial []string
	for i := range c.opts.N {
		host := "127.0.0.1"
		if c.opts.Host != nil {
			host = c.opts.Host(i)
		}
		m, err := c.newMember(fmt.Sprintf("m%d", i+1), host)
		if err != nil {
			return err
		}
		if c.opts.DataDir != nil && c.opts.DataDir(i) != "" {
			m.DataDir = c.opts.DataDir(i)
			m.Args = replaceFlag(m.Args, "--data-dir", m.DataDir)
		}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerAddr)
	}
	for i, m := range c.Members {
		m.Args = append(m.Args, "--initial-cluster", strings.Join(initial, ","))
		m.Args = append(m.Args, c.opts.Args...)
		if c.opts.MemberArgs != nil {
			m.Args = append(m.Args, c.opts.MemberArgs(i)...)
		}
		if err := c.prepare(m); err != nil {
			return err
		}
	}
	for i := range c.Members {
		if err := c.Start(i); err != nil {
			return err
		}
	}
	for i := range c.Members {
		if err := c.waitReady(ctx, i, c.opts.ReadyWithin, false); err != nil {
			return err
		}
	}
	return nil
}

// newMember makes member name on host with fresh ports, not yet started.
func (c *Cluster) newMember(name, host string) (*Member, error) {
	ports, err := c.pick(host, 3)
	if err != nil {
		return nil, err
	}
	hp := func(p int) string { return net.JoinHostPort(host, strconv.Itoa(p)) }
	// A name that joins again after its removal gets a dir of its own.
	base := filepath.Join(c.opts.Dir, name)
	for n := 2; exists(base) || exists(base+".log"); n++ {
		base = filepath.Join(c.opts.Dir, fmt.Sprintf("%s.%d", name, n))
	}
	m := &Member{
		Name: name, Host: host, PeerPort: ports[1],
		DataDir: base, LogPath: base + ".log",
		ClientAddr: hp(ports[0]), PeerAddr: hp(ports[1]), GossipAddr: hp(ports[2]),
		env: c.opts.Env,
	}
	m.Args = []string{"server", "--name", m.Name, "--data-dir", m.DataDir,
		"--client-addr", m.ClientAddr, "--peer-addr", m.PeerAddr, "--gossip-addr", m.GossipAddr}
	return m, nil
}

// empty removes the data dir and log of a member that never was ready
// (nothing was acknowledged), before it is made again on new ports.
func (m *Member) empty() error {
	err := os.RemoveAll(m.DataDir)
	if rerr := os.Remove(m.LogPath); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("proc: emptying %s for a start on new ports: %w", m.Name, err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func (c *Cluster) prepare(m *Member) error {
	if err := os.MkdirAll(m.DataDir, 0o755); err != nil {
		return fmt.Errorf("proc: data dir of %s: %w", m.Name, err)
	}
	if c.opts.Prepare != nil {
		if err := c.opts.Prepare(m); err != nil {
			return fmt.Errorf("proc: preparing %s: %w", m.Name, err)
		}
	}
	return nil
}

// freePorts returns n distinct ports that were free on host a moment ago.
func freePorts(host string, n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("proc: picking a port on %s: %w", host, err)
		}
		// Held until all n are picked, so that they differ.
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func replaceFlag(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == flag && i+1 < len(out) {
			out[i+1] = value
		}
	}
	return out
}

// Add starts a new member, name, on host with fresh ports and an empty
// data dir, joining the running members' gossip, and returns its index.
// It waits only until the member has bound its addresses (started again on
// new ports if one was taken): it is ready once the leader has added it.
func (c *Cluster) Add(ctx context.Context, name, host string, args ...string) (int, error) {
	var join []string
	for _, o := range c.Members {
		if o.Running() {
			join = append(join, o.GossipAddr)
		}
	}
	if len(join) == 0 {
		return -1, fmt.Errorf("%w: no member runs for %s to join", ErrNotRunning, name)
	}
	for attempt := 1; ; attempt++ {
		m, err := c.newMember(name, host)
		if err != nil {
			return -1, err
		}
		m.Args = append(m.Args, "--join", strings.Join(join, ","))
		m.Args = append(m.Args, args...)
		if err := c.prepare(m); err != nil {
			return -1, err
		}
		if err := m.start(c.opts.Binary); err != nil {
			return -1, err
		}
		err = c.awaitBound(ctx, m, c.opts.ReadyWithin)
		if err == nil {
			c.Members = append(c.Members, m)
			return len(c.Members) - 1, nil
		}
		m.Kill()
		if !errors.Is(err, ErrPortInUse) || attempt == startAttempts {
			return -1, err
		}
		if err := m.empty(); err != nil {
			return -1, err
		}
	}
}

// Start starts member i's process on its data dir and addresses; it does
// not wait (WaitReady does).
func (c *Cluster) Start(i int) error {
	m := c.Members[i]
	if err := m.start(c.opts.Binary); err != nil {
		return err
	}
	c.log.Debug("started member", "member", m.Name, "pid", m.PID(), "client_addr", m.ClientAddr)
	return nil
}

// Kill kills member i with SIGKILL and waits until it is gone.
func (c *Cluster) Kill(i int) { c.Members[i].Kill() }

// KillAll sends SIGKILL to every member at once, then waits for each.
func (c *Cluster) KillAll() {
	for _, m := range c.Members {
		if cmd, _ := m.process(); cmd != nil {
			_ = cmd.Process.Kill() // fails only once it has exited
		}
	}
	for _, m := range c.Members {
		m.Kill()
	}
}

// StopAll stops every member with SIGTERM at once, killing those still
// running after within (or once ctx ends), and returns the errors of
// those that did not exit cleanly.
func (c *Cluster) StopAll(ctx context.Context, within time.Duration) error {
	errs := make([]error, len(c.Members))
	var wg sync.WaitGroup
	for i, m := range c.Members {
		wg.Go(func() {
			stop := context.AfterFunc(ctx, m.Kill)
			defer stop()
			if err := m.Stop(within); err != nil {
				errs[i] = fmt.Errorf("%s: %w", m.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Index returns the index of the member called name (the newest, when a
// removed name joined again), or -1.
func (c *Cluster) Index(name string) int {
	for i := len(c.Members) - 1; i >= 0; i-- {
		if c.Members[i].Name == name {
			return i
		}
	}
	return -1
}

// Endpoints lists the members' client addresses, member first's first
// (all in order when first < 0).
func (c *Cluster) Endpoints(first int) []string {
	var eps []string
	if first >= 0 {
		eps = append(eps, c.Members[first].ClientAddr)
	}
	for i, m := range c.Members {
		if i != first {
			eps = append(eps, m.ClientAddr)
		}
	}
	return eps
}

// LogTails returns the last n lines of every member's log, each under a
// heading: what a failed test prints.
func (c *Cluster) LogTails(n int) string {
	var b strings.Builder
	for _, m := range c.Members {
		fmt.Fprintf(&b, "--- log of %s (tail) ---\n%s\n", m.Name, m.Tail(n))
	}
	return b.String()
}
