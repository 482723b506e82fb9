package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/bench"
)

// benchFlags are the flags of `arbor bench`.
type benchFlags struct {
	opts         bench.Options
	endpoints    string
	json         bool
	startCluster bool
	serverBinary string
	prefix       string
	sessionTime  time.Duration
	candidate    bool
	opLog        string
	inOrder      bool
	noDiscovery  bool
}

// newBenchCommand is `arbor bench WORKLOAD`: it runs one workload of
// package client/bench against a cluster, or against a 3-member cluster of
// this binary it starts itself (--start-cluster; always for failover).
func newBenchCommand() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench WORKLOAD",
		Short: "Measure a cluster: throughput and latency of one workload",
		Long: `Run one workload against a cluster and print its throughput, latency
percentiles (p50, p99, max) and error count; a progress line goes to stderr.
Every result is checked (a get must return the value last set, an ephemeral
must go with its session, ...): failed operations and failed checks are
counted as errors, and any error makes the exit status 1.

Workloads:
` + workloadHelp() + `
failover always runs on a cluster of 3 "arbor server" processes of this
binary that the command starts on loopback (data in a temp dir) and stops
afterwards; --start-cluster does the same for any workload. elect-failover
spawns its leading candidate as another process of this binary.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBench(cmd.Context(), cmd, args[0], &f)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&f.opts.Clients, "clients", bench.DefaultClients, "concurrent clients, one session each")
	fs.DurationVar(&f.opts.Duration, "duration", bench.DefaultDuration, "how long to run (unless --ops)")
	fs.Int64Var(&f.opts.Ops, "ops", 0, "total operations to run, instead of --duration (failover: rounds, default 1)")
	fs.IntVar(&f.opts.ValueSize, "value-size", bench.DefaultValueSize, "bytes per value")
	fs.IntVar(&f.opts.Keys, "keys", bench.DefaultKeys, "key spread of set, get and multi")
	fs.BoolVar(&f.opts.Local, "local", false, "get: local (sequentially consistent) reads instead of linearizable ones")
	fs.IntVar(&f.opts.Sessions, "sessions", bench.DefaultSessions, "sessions: how many sessions to open; failover: how many stay open through the kills")
	fs.DurationVar(&f.opts.Hold, "hold", 0, "sessions: keep them open and idle this long, measuring each member's memory per session and CPU")
	fs.DurationVar(&f.opts.OpTimeout, "op-timeout", bench.DefaultOpTimeout, "give up on one operation after this long (counted as an error)")
	fs.StringVar(&f.endpoints, "endpoints", "127.0.0.1:7400", "members to try, HOST:PORT,... (or ARBOR_ENDPOINTS)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object per result instead of a table")
	fs.BoolVar(&f.startCluster, "start-cluster", false, "start a 3-member cluster of this binary on loopback for the run")
	fs.StringVar(&f.serverBinary, "server-binary", "", "arbor binary the started cluster runs (default: this one)")
	fs.DurationVar(&f.sessionTime, "session-timeout", client.DefaultSessionTimeout, "session timeout each client asks for (it pings every third of it)")
	fs.StringVar(&f.prefix, "prefix", "", "path the run writes under (default /bench-<unix nanos>)")
	fs.StringVar(&f.opts.Path, "path", "", "lock: the lock the clients contend for (default PREFIX/lock; missing parents are created)")
	fs.IntVar(&f.opts.Watchers, "watchers", bench.DefaultWatchers, "watch: watchers of the one node, spread over --clients sessions; watch-memory: watches to set; set-watched: recursive watches of / held during the run")
	fs.IntVar(&f.opts.WatchSessions, "watch-sessions", 0, "set-watched: sessions holding the watches (default min(--watchers, 10))")
	fs.Float64Var(&f.opts.Rate, "rate", bench.DefaultRate, "watch: the writer's updates a second (0: back to back, one outstanding)")
	fs.StringVar(&f.opts.WatchMode, "watch-mode", bench.WatchPersistent, "watch: persistent (the watch op) or oneshot (get with a watch, set again after each event)")
	fs.StringVar(&f.opLog, "op-log", "", "write a line per timed operation to this file: END_UNIX_NANOS LATENCY_NANOS ok|err")
	fs.BoolVar(&f.inOrder, "in-order", false, "open every session on the first of --endpoints that answers, not spread over the members (with one endpoint: a run pinned to that member)")
	fs.BoolVar(&f.noDiscovery, "no-discovery", false, noDiscoveryHelp)
	fs.BoolVar(&f.candidate, "candidate", false, "elect-failover: be the candidate process it spawns")
	_ = fs.MarkHidden("server-binary") // for tests, which run as another binary
	_ = fs.MarkHidden("candidate")
	return cmd
}

func workloadHelp() string {
	var b strings.Builder
	for _, w := range bench.Workloads() {
		fmt.Fprintf(&b, "  %-17s %s\n", w[0], w[1])
	}
	return b.String()
}

func runBench(ctx context.Context, cmd *cobra.Command, workload string, f *benchFlags) error {
	if f.opts.Clients < 1 || f.opts.ValueSize < 0 || f.opts.Ops < 0 || f.opts.Keys < 1 || f.opts.Sessions < 1 || f.opts.Hold < 0 ||
		f.opts.Watchers < 1 || f.opts.WatchSessions < 0 || f.opts.Rate < 0 {
		return usageErrorf("--clients, --keys, --sessions and --watchers must be at least 1; --ops, --value-size, --hold, --watch-sessions and --rate not negative")
	}
	if m := f.opts.WatchMode; m != bench.WatchPersistent && m != bench.WatchOneShot {
		return usageErrorf("--watch-mode %q: want %s or %s", m, bench.WatchPersistent, bench.WatchOneShot)
	}
	if p := f.opts.Path; p != "" && (!strings.HasPrefix(p, "/") || p == "/" || strings.HasSuffix(p, "/")) {
		return usageErrorf("--path %q: want an absolute path below the root, such as /locks/a", p)
	}
	known := false
	for _, w := range bench.Workloads() {
		known = known || w[0] == workload
	}
	if !known {
		return usageErrorf("unknown workload %q; see 'arbor bench --help'", workload)
	}
	logger := slog.New(slog.DiscardHandler)
	env := &bench.Env{
		System: "arbor",
		DialAt: bench.ArborDialerConfig(client.Config{Logger: logger, SessionTimeout: f.sessionTime,
			InOrder: f.inOrder, NoDiscovery: f.noDiscovery}),
		Options:  f.opts,
		Prefix:   f.prefix,
		Progress: cmd.ErrOrStderr(),
	}
	if workload == "failover" || f.startCluster {
		lc, stop, err := startBenchCluster(ctx, cmd.ErrOrStderr(), f.serverBinary, logger)
		if err != nil {
			return err
		}
		defer stop()
		env.Endpoints, env.Cluster = lc.Endpoints(), lc
		env.Memory = memoryOf(lc.Endpoints(), lc.PIDs)
		env.Heap = bench.MetricsLiveHeap(metricsURLs(lc.Endpoints()))
		env.Stats = bench.MetricsStats(lc.Endpoints())
	} else {
		eps := splitEndpoints(f.endpoints)
		if v, ok := os.LookupEnv("ARBOR_ENDPOINTS"); ok && !cmd.Flags().Changed("endpoints") {
			eps = splitEndpoints(v)
		}
		if len(eps) == 0 {
			return usageErrorf("--endpoints is empty")
		}
		env.Endpoints = eps
		addrs := memberAddrs(ctx, eps, logger)
		env.Memory = memoryOf(addrs, nil)
		env.Heap = bench.MetricsLiveHeap(metricsURLs(addrs))
		env.Stats = bench.MetricsStats(addrs)
	}
	if f.candidate {
		if workload != "elect-failover" || f.opts.Path == "" {
			return usageErrorf("--candidate is elect-failover's, with --path")
		}
		if err := bench.RunCandidate(ctx, env, f.opts.Path, cmd.OutOrStdout()); err != nil {
			return &exitError{code: exitFail, msg: err.Error()}
		}
		return nil
	}
	if workload == "elect-failover" {
		spawn, err := spawnSelf(cmd.ErrOrStderr(), f, env.Endpoints)
		if err != nil {
			return err
		}
		env.Spawn = spawn
	}
	closeLog := func() error { return nil }
	if f.opLog != "" {
		file, err := os.Create(f.opLog)
		if err != nil {
			return &exitError{code: exitFail, msg: fmt.Sprintf("bench: --op-log: %v", err)}
		}
		env.OpLog = bench.NewOpLog(file)
		closeLog = func() error { return cmp.Or(env.OpLog.Close(), file.Close()) }
	}
	res, err := bench.Run(ctx, workload, env)
	err = cmp.Or(err, closeLog())
	if err != nil && res.Workload == "" {
		return &exitError{code: exitFail, msg: err.Error()}
	}
	out := cmd.OutOrStdout()
	if f.json {
		_ = bench.WriteJSON(out, res) // a broken stdout leaves nothing to tell
	} else {
		_ = bench.WriteTable(out, res)
	}
	switch {
	case err != nil:
		return &exitError{code: exitFail, msg: err.Error()}
	case res.Errors > 0:
		return &exitError{code: exitFail, msg: fmt.Sprintf("bench: %d errors; first: %s", res.Errors, res.FirstError)}
	}
	return nil
}

func splitEndpoints(s string) []string {
	var eps []string
	for ep := range strings.SplitSeq(s, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	return eps
}

// spawnSelf returns elect-failover's Spawn: this binary (or
// --server-binary) as `arbor bench elect-failover --candidate` against the
// same endpoints, with the same session timeout.
func spawnSelf(stderr io.Writer, f *benchFlags, endpoints []string) (func(context.Context, string) (bench.Candidate, error), error) {
	binary, err := arborBinary(f.serverBinary)
	if err != nil {
		return nil, err
	}
	return bench.SpawnCommand(stderr, func(path string) []string {
		return []string{binary, "bench", "elect-failover", "--candidate", "--path", path,
			"--endpoints", strings.Join(endpoints, ","), "--session-timeout", f.sessionTime.String()}
	}), nil
}

// arborBinary is binary, or this executable when it is empty.
func arborBinary(binary string) (string, error) {
	if binary != "" {
		return binary, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", &exitError{code: exitFail, msg: "INTERNAL: cannot find this executable: " + err.Error()}
	}
	return exe, nil
}

// startBenchCluster starts 3 members of binary (default: this executable)
// in a temp dir; stop stops them and removes the dir.
func startBenchCluster(ctx context.Context, progress io.Writer, binary string, logger *slog.Logger) (*bench.LocalCluster, func(), error) {
	binary, err := arborBinary(binary)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "arbor-bench-")
	if err != nil {
		return nil, nil, &exitError{code: exitFail, msg: "INTERNAL: " + err.Error()}
	}
	fmt.Fprintf(progress, "starting 3 members of %s in %s\n", binary, dir)
	lc, err := bench.StartLocalCluster(ctx, binary, dir, 3, logger)
	if err != nil {
		return nil, nil, &exitError{code: exitFail, msg: "UNAVAILABLE: " + err.Error() + " (member logs kept in " + dir + ")"}
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		lc.Stop(sctx)
		os.RemoveAll(dir)
	}
	return lc, stop, nil
}

// memberAddrs returns every member's client address as the cluster lists
// them, or the endpoints when it cannot be asked.
func memberAddrs(ctx context.Context, eps []string, logger *slog.Logger) []string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Endpoints: eps, Logger: logger})
	if err != nil {
		return eps
	}
	defer c.Close(ctx)
	ms, err := c.Members(ctx)
	if err != nil {
		return eps
	}
	var addrs []string
	for _, m := range ms {
		if m.ClientURL != "" {
			addrs = append(addrs, m.ClientURL)
		}
	}
	if len(addrs) == 0 {
		return eps
	}
	return addrs
}

// memoryOf reads process_resident_memory_bytes from each member's
// /metrics; for members this process started, /proc stands in when the
// metric is missing.
func memoryOf(addrs []string, pids func() []int) bench.MemoryProbe {
	metrics := bench.MetricsMemory(metricsURLs(addrs))
	return func(ctx context.Context) (uint64, error) {
		m, err := metrics(ctx)
		if errors.Is(err, bench.ErrNoMemoryMetric) && pids != nil {
			return bench.ProcMemory(pids)(ctx)
		}
		return m, err
	}
}

// metricsURLs are the /metrics endpoints of members at addrs.
func metricsURLs(addrs []string) []string {
	urls := make([]string, len(addrs))
	for i, a := range addrs {
		urls[i] = "http://" + a + "/metrics"
	}
	return urls
}
