package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/arbor-db/arbor/bench/etcd"
	"github.com/arbor-db/arbor/bench/zk"
	"github.com/arbor-db/arbor/client/bench"
)

type config struct {
	endpoints map[string]string // system -> HOST:PORT,...
	workloads []string
	clients   []int
	reps      int
	opts      bench.Options
	out, raw  string
	note      string
	// watch, watch-memory: a cell per watcher count and watch mode;
	// set-watched uses the first watcher count.
	watchers   []int
	watchModes []string
	zkPIDs     []int // ZooKeeper members' processes, for their memory
}

// systems in the order of the report's columns.
var systems = []string{"arbor", "zookeeper", "etcd"}

func dialer(system string) func(context.Context, []string) (bench.Store, error) {
	switch system {
	case "zookeeper":
		return zk.Dial
	case "etcd":
		return etcd.Dial
	}
	return bench.ArborDialer(slog.New(slog.DiscardHandler))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if len(os.Args) > 1 && os.Args[1] == "candidate" {
		err = candidate(ctx, os.Args[2:])
	} else {
		err = run(ctx, os.Args[1:], os.Stderr)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "matrix:", err)
		os.Exit(1)
	}
}

func parse(args []string) (config, error) {
	cfg := config{endpoints: map[string]string{}}
	fs := flag.NewFlagSet("matrix", flag.ContinueOnError)
	for _, s := range systems {
		fs.Func(s, s+" endpoints HOST:PORT,... (empty: skip)", func(v string) error { cfg.endpoints[s] = v; return nil })
	}
	workloads := fs.String("workloads", "create,set,get-local,get-linearizable", "workloads, comma-separated")
	clients := fs.String("clients", "1,16,64", "client counts, comma-separated")
	fs.IntVar(&cfg.reps, "reps", 3, "repetitions of every cell")
	fs.DurationVar(&cfg.opts.Duration, "duration", 10*time.Second, "duration of every cell")
	fs.IntVar(&cfg.opts.ValueSize, "value-size", bench.DefaultValueSize, "bytes per value")
	fs.IntVar(&cfg.opts.Keys, "keys", bench.DefaultKeys, "key spread")
	fs.StringVar(&cfg.out, "out", "results.md", "markdown report")
	fs.StringVar(&cfg.raw, "raw", "results.jsonl", "raw results, one JSON object a line")
	watchers := fs.String("watchers", "100", "watch, watch-memory: watcher counts, comma-separated; set-watched: recursive watches of /")
	modes := fs.String("watch-modes", bench.WatchPersistent, "watch, watch-memory: watch modes, comma-separated (persistent, oneshot); a system without one skips it")
	fs.Float64Var(&cfg.opts.Rate, "rate", bench.DefaultRate, "watch: the writer's updates a second (0: back to back)")
	fs.IntVar(&cfg.opts.WatchSessions, "watch-sessions", 10, "set-watched: sessions holding the watches")
	zkPIDs := fs.String("zookeeper-pids", "", "watch-memory: the ZooKeeper members' pids, comma-separated (their RSS, and heap after a full GC by jcmd)")
	fs.StringVar(&cfg.note, "note", "", "a line about the machine and run, put at the top of the report")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.workloads = strings.Split(*workloads, ",")
	for c := range strings.SplitSeq(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return cfg, fmt.Errorf("bad --clients entry %q", c)
		}
		cfg.clients = append(cfg.clients, n)
	}
	for _, list := range []struct {
		s   string
		out *[]int
	}{{*watchers, &cfg.watchers}, {*zkPIDs, &cfg.zkPIDs}} {
		for v := range strings.SplitSeq(list.s, ",") {
			if v = strings.TrimSpace(v); v == "" {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return cfg, fmt.Errorf("bad entry %q in --watchers or --zookeeper-pids", v)
			}
			*list.out = append(*list.out, n)
		}
	}
	if len(cfg.watchers) == 0 {
		return cfg, errors.New("--watchers is empty")
	}
	cfg.watchModes = strings.Split(*modes, ",")
	if len(cfg.endpoints) == 0 {
		return cfg, errors.New("no system given: pass --arbor, --zookeeper and/or --etcd endpoints")
	}
	return cfg, nil
}

func run(ctx context.Context, args []string, progress io.Writer) error {
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	raw, err := os.Create(cfg.raw)
	if err != nil {
		return err
	}
	defer raw.Close()
	var active []string
	for _, s := range systems {
		if cfg.endpoints[s] != "" {
			active = append(active, s)
		}
	}
	var results []bench.Result
	type cellSpec struct {
		workload, mode    string
		clients, watchers int
	}
	var specs []cellSpec
	for _, w := range cfg.workloads {
		for _, c := range cfg.clients {
			switch w {
			case "watch", "watch-memory":
				for _, m := range cfg.watchModes {
					for _, n := range cfg.watchers {
						specs = append(specs, cellSpec{w, m, c, n})
					}
				}
			case "set-watched":
				specs = append(specs, cellSpec{w, "", c, cfg.watchers[0]})
			default:
				specs = append(specs, cellSpec{w, "", c, 0})
			}
		}
	}
	cells := cfg.reps * len(specs) * len(active)
	n := 0
	for rep := range cfg.reps {
		for _, sp := range specs {
			// Systems take turns, starting with a different one each
			// repetition, so no system always runs first (or warm).
			for i := range active {
				sys := active[(i+rep)%len(active)]
				n++
				fmt.Fprintf(progress, "[%d/%d] rep %d: %s %s %s, %d clients, %d watchers\n", n, cells, rep+1, sys, sp.workload, sp.mode, sp.clients, sp.watchers)
				res, err := runCell(ctx, cfg, sys, sp.workload, sp.clients, sp.watchers, sp.mode)
				if errors.Is(err, bench.ErrUnsupported) && sp.watchers > 0 {
					fmt.Fprintf(progress, "skipped: %v\n", err)
					continue // a watch mode the system lacks: no cell
				}
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					// A cell that cannot run is a result with an error,
					// not the end of the matrix.
					res = bench.Result{System: sys, Workload: sp.workload, Clients: sp.clients, Watchers: sp.watchers, WatchMode: sp.mode, Errors: 1, FirstError: err.Error()}
				}
				if err := bench.WriteJSON(raw, res); err != nil {
					return err
				}
				results = append(results, res)
			}
		}
	}
	f, err := os.Create(cfg.out)
	if err != nil {
		return err
	}
	defer f.Close()
	return writeReport(f, cfg, active, results)
}

func runCell(ctx context.Context, cfg config, system, workload string, clients, watchers int, mode string) (bench.Result, error) {
	opts := cfg.opts
	opts.Clients, opts.Watchers, opts.WatchMode = clients, watchers, mode
	eps := strings.Split(cfg.endpoints[system], ",")
	env := &bench.Env{
		System:    system,
		Endpoints: eps,
		DialAt:    dialer(system),
		Options:   opts,
		Progress:  os.Stderr,
	}
	env.Memory, env.Heap = memoryProbes(system, eps, cfg.zkPIDs)
	if workload == "elect-failover" {
		exe, err := os.Executable()
		if err != nil {
			return bench.Result{}, err
		}
		env.Spawn = bench.SpawnCommand(os.Stderr, func(path string) []string {
			return []string{exe, "candidate", system, cfg.endpoints[system], path}
		})
	}
	return bench.Run(ctx, workload, env)
}

// candidate is `matrix candidate SYSTEM ENDPOINTS PATH`, the process
// elect-failover spawns as the leading candidate and kills.
func candidate(ctx context.Context, args []string) error {
	if len(args) != 3 || !slices.Contains(systems, args[0]) {
		return fmt.Errorf("usage: matrix candidate %s ENDPOINTS PATH", strings.Join(systems, "|"))
	}
	env := &bench.Env{System: args[0], Endpoints: strings.Split(args[1], ","), DialAt: dialer(args[0])}
	return bench.RunCandidate(ctx, env, args[2], os.Stdout)
}
