package bench

import (
	"context"
	"fmt"
)

// MemberStat is what one member's /metrics says about its cost.
type MemberStat struct {
	Addr       string  `json:"addr"`
	Leader     bool    `json:"leader"`
	RSSBytes   uint64  `json:"rss_bytes"`
	GoBytes    uint64  `json:"go_bytes"` // heap and stacks in use: live Go memory
	CPUSeconds float64 `json:"cpu_seconds"`
	Goroutines int     `json:"goroutines"`
	Sessions   int     `json:"sessions"` // sessions whose connection it holds
}

// StatsProbe reads every member's stat, in a fixed member order.
type StatsProbe func(ctx context.Context) ([]MemberStat, error)

// MetricsStats reads the members' Prometheus endpoints (one URL each, in
// the order of addrs).
func MetricsStats(addrs []string) StatsProbe {
	return func(ctx context.Context) ([]MemberStat, error) {
		out := make([]MemberStat, len(addrs))
		for i, a := range addrs {
			v, err := scrapeMetrics(ctx, "http://"+a+"/metrics",
				"process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes",
				"process_cpu_seconds_total", "arbor_raft_is_leader", "go_goroutines", "arbor_sessions_connected")
			if err != nil {
				return nil, err
			}
			if _, ok := v["process_cpu_seconds_total"]; !ok {
				return nil, fmt.Errorf("%w: %s has no process_cpu_seconds_total", ErrNoMemoryMetric, a)
			}
			out[i] = MemberStat{
				Addr:       a,
				Leader:     v["arbor_raft_is_leader"] == 1,
				RSSBytes:   uint64(v["process_resident_memory_bytes"]),
				GoBytes:    uint64(v["go_memstats_heap_inuse_bytes"] + v["go_memstats_stack_inuse_bytes"]),
				CPUSeconds: v["process_cpu_seconds_total"],
				Goroutines: int(v["go_goroutines"]),
				Sessions:   int(v["arbor_sessions_connected"]),
			}
		}
		return out, nil
	}
}

// MemberCost is a member's cost over a hold: memory added per session
// (relative to before the sessions were opened) and CPU used per second.
type MemberCost struct {
	Addr              string  `json:"addr"`
	Leader            bool    `json:"leader"`
	Sessions          int     `json:"sessions"` // whose connections it holds
	RSSPerSession     float64 `json:"rss_bytes_per_session"`
	GoPerSession      float64 `json:"go_bytes_per_session"`
	CPUCoresWhileIdle float64 `json:"cpu_cores_while_idle"` // CPU seconds per second of the hold
}

// costs compares member stats before opening n sessions (before), with
// them open (open) and after holding them idle for holdSec (held). Memory
// is per session of all n: every member keeps every session's replicated
// state, and the one holding a session's connection its connection too.
func costs(before, open, held []MemberStat, holdSec float64, n int) []MemberCost {
	out := make([]MemberCost, len(before))
	for i := range before {
		c := MemberCost{Addr: before[i].Addr, Leader: held[i].Leader, Sessions: held[i].Sessions}
		if n > 0 {
			c.RSSPerSession = (float64(held[i].RSSBytes) - float64(before[i].RSSBytes)) / float64(n)
			c.GoPerSession = (float64(held[i].GoBytes) - float64(before[i].GoBytes)) / float64(n)
		}
		if holdSec > 0 {
			c.CPUCoresWhileIdle = (held[i].CPUSeconds - open[i].CPUSeconds) / holdSec
		}
		out[i] = c
	}
	return out
}
