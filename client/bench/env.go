package bench

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultClients   = 1
	DefaultDuration  = 10 * time.Second
	DefaultValueSize = 100
	DefaultKeys      = 1000
	DefaultSessions  = 1000
	DefaultOpTimeout = 5 * time.Second
	DefaultWatchers  = 100
	DefaultRate      = 200
)

// Options are the knobs of a run; zero values mean the defaults.
type Options struct {
	Clients   int           // concurrent clients, one session each
	Duration  time.Duration // how long the timed loop runs when Ops is 0
	Ops       int64         // total operations across clients; wins over Duration
	ValueSize int           // bytes per value (at least the value's tag)
	Keys      int           // key spread of set, get and multi
	Local     bool          // get: local (sequentially consistent) reads
	Sessions  int           // sessions: how many to open; failover: how many ping through the kills
	OpTimeout time.Duration // bound on one operation
	// Hold (sessions) keeps the sessions open and idle this long after
	// opening them, measuring each member's memory and CPU meanwhile.
	Hold time.Duration
	// Path (lock) is the lock the clients contend for; default
	// PREFIX/lock. Its parents are created if missing.
	Path string
	// Watchers (watch) is how many watchers watch the node, spread over
	// Clients sessions; (watch-memory) how many watches to set; (set-watched)
	// how many recursive watches on / to hold over WatchSessions sessions.
	Watchers int
	// WatchSessions (set-watched) is how many sessions hold the watches.
	WatchSessions int
	// Rate (watch) is the writer's updates a second; 0: back to back, one
	// write outstanding.
	Rate float64
	// WatchMode (watch) is WatchPersistent (default) or WatchOneShot.
	WatchMode string
}

func (o Options) withDefaults() Options {
	if o.Clients <= 0 {
		o.Clients = DefaultClients
	}
	if o.Duration <= 0 {
		o.Duration = DefaultDuration
	}
	if o.ValueSize <= 0 {
		o.ValueSize = DefaultValueSize
	}
	if o.Keys <= 0 {
		o.Keys = DefaultKeys
	}
	if o.Sessions <= 0 {
		o.Sessions = DefaultSessions
	}
	if o.Watchers <= 0 {
		o.Watchers = DefaultWatchers
	}
	if o.WatchSessions <= 0 {
		o.WatchSessions = min(o.Watchers, 10)
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = DefaultOpTimeout
	}
	return o
}

// MemoryProbe returns the resident memory of the system's members, summed.
type MemoryProbe func(ctx context.Context) (uint64, error)

// Env is what a workload runs against.
type Env struct {
	System    string   // name in results: arbor, zookeeper, etcd
	Endpoints []string // the members, HOST:PORT
	// DialAt opens a session with the members at endpoints.
	DialAt  func(ctx context.Context, endpoints []string) (Store, error)
	Options Options
	// Prefix is the root under which the run writes; one per run so runs
	// never see each other's data. Default /bench-<unix nanos>.
	Prefix string
	// Memory, when set, is read by the sessions and watch-memory workloads.
	Memory MemoryProbe
	// Heap, when set, is the members' live heap, summed (watch-memory).
	Heap MemoryProbe
	// Stats, when set, reads each member's memory and CPU (sessions --hold).
	Stats StatsProbe
	// Cluster is set only when the command started the cluster itself;
	// failover needs it.
	Cluster Cluster
	// Spawn, when set, starts a candidate for the election at path in
	// another process and returns once it leads (elect-failover).
	Spawn func(ctx context.Context, path string) (Candidate, error)
	// Progress, when set, gets a progress line every second.
	Progress io.Writer
	// OpLog, when set, gets a line for every operation RunOps and
	// RunTimedOps time (arbor bench --op-log).
	OpLog *OpLog
}

// Dial opens a session with the cluster.
func (e *Env) Dial(ctx context.Context) (Store, error) {
	return e.DialAt(ctx, e.Endpoints)
}

// Workload is one benchmark.
type Workload interface {
	Run(ctx context.Context, env *Env) (Result, error)
}

type spec struct {
	help string
	new  func() Workload
}

var (
	regMu    sync.Mutex
	registry = map[string]spec{}
)

// Register makes a workload available by name; workloads call it from init.
func Register(name, help string, newWorkload func() Workload) {
	regMu.Lock()
	defer regMu.Unlock()
	registry[name] = spec{help: help, new: newWorkload}
}

// Workloads returns the registered names, sorted, with their help lines.
func Workloads() [][2]string {
	regMu.Lock()
	defer regMu.Unlock()
	out := make([][2]string, 0, len(registry))
	for name, s := range registry {
		out = append(out, [2]string{name, s.help})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// Run runs the named workload against env.
func Run(ctx context.Context, name string, env *Env) (Result, error) {
	regMu.Lock()
	s, ok := registry[name]
	regMu.Unlock()
	if !ok {
		return Result{}, fmt.Errorf("%w: %q", ErrUnknownWorkload, name)
	}
	if env.DialAt == nil {
		return Result{}, fmt.Errorf("bench: env has no DialAt")
	}
	env.Options = env.Options.withDefaults()
	if env.Prefix == "" {
		env.Prefix = fmt.Sprintf("/bench-%d", time.Now().UnixNano())
	}
	return s.new().Run(ctx, env)
}
