package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/arbor-db/arbor/client/bench"
)

// memoryProbes returns the members' resident memory and live heap probes
// of system: Arbor's and etcd's from their Prometheus endpoints (the
// client port serves /metrics on both), ZooKeeper's from /proc and jcmd
// for the pids given (nil when there are none).
func memoryProbes(system string, endpoints []string, zkPIDs []int) (rss, heap bench.MemoryProbe) {
	if system == "zookeeper" {
		if len(zkPIDs) == 0 {
			return nil, nil
		}
		pids := func() []int { return zkPIDs }
		return bench.ProcMemory(pids), jvmHeap(zkPIDs)
	}
	urls := make([]string, len(endpoints))
	for i, ep := range endpoints {
		urls[i] = "http://" + ep + "/metrics"
	}
	return bench.MetricsMemory(urls), bench.MetricsLiveHeap(urls)
}

// jvmHeap sums the used heap of the JVMs at pids right after a full
// collection (jcmd PID GC.run, then GC.heap_info).
func jvmHeap(pids []int) bench.MemoryProbe {
	return func(ctx context.Context) (uint64, error) {
		var sum uint64
		for _, pid := range pids {
			p := strconv.Itoa(pid)
			if out, err := exec.CommandContext(ctx, "jcmd", p, "GC.run").CombinedOutput(); err != nil {
				return 0, fmt.Errorf("jcmd %s GC.run: %w: %s", p, err, out)
			}
			out, err := exec.CommandContext(ctx, "jcmd", p, "GC.heap_info").CombinedOutput()
			if err != nil {
				return 0, fmt.Errorf("jcmd %s GC.heap_info: %w: %s", p, err, out)
			}
			used, err := heapUsed(out)
			if err != nil {
				return 0, fmt.Errorf("jcmd %s GC.heap_info: %w", p, err)
			}
			sum += used
		}
		return sum, nil
	}
}

// heapUsed reads the first "used NNNK" of GC.heap_info's output: the
// whole heap's (" garbage-first heap   total 262144K, used 21504K ...").
func heapUsed(out []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		_, rest, ok := strings.Cut(sc.Text(), "used ")
		if !ok {
			continue
		}
		f := strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == ',' })
		if len(f) == 0 || !strings.HasSuffix(f[0], "K") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(f[0], "K"), 10, 64)
		if err != nil {
			return 0, err
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no used heap in %q", out)
}
