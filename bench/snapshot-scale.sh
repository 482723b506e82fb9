#!/usr/bin/env bash
# snapshot-scale.sh [OUTDIR]
#
# Snapshots at 500 MB: a 3-member Arbor cluster of this checkout on
# loopback (fsync on, --snapshot-entries 20000) fed creates of 1 KiB values
# by 64 clients until the tree is over 500 MB (OPS creates, default
# 560000). It tells
#   - whether the leader and term stayed the same from start to end (every
#     member's /metrics sampled every 0.5 s: arbor_raft_term,
#     arbor_raft_is_leader, arbor_raft_leader_changes_total);
#   - every snapshot each member took and how long it took (from view to
#     compacted log: the "saved snapshot" log line's took);
#   - the write p99 of creates in flight while any member was taking a
#     snapshot, against the p99 of the others, and their ratio (target: at
#     most 3x), from `arbor bench create --op-log` (one line per create).
# OUTDIR (default a temp dir, removed) keeps the member logs, the op log,
# the metric samples and summary.txt. Needs curl and python3. Client ports
# BASE+1..3 with BASE=${ARBOR_PORT_BASE:-47400}, peer BASE+101..,
# gossip BASE+201...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/scripts/lib.sh"

ops=${OPS:-560000}
clients=${CLIENTS:-64}
every=${SNAPSHOT_ENTRIES:-20000}
base=${ARBOR_PORT_BASE:-47400}
if [ $# -ge 1 ]; then
	work=$1
	mkdir -p "$work"
	work=$(cd "$work" && pwd)
	keep=1
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/arbor-snapscale.XXXXXX")
	keep=0
fi
poller=""
cleanup() {
	[ -n "$poller" ] && kill "$poller" 2>/dev/null || true
	stop_pids "$work"
	if [ "$keep" = 0 ]; then rm -rf "$work"; else rm -rf "$work"/m*/data; fi
}
trap cleanup EXIT

(cd "$here/.." && go build -o "$work/arbor" ./cmd/arbor)
initial="" endpoints=""
for i in 1 2 3; do
	initial+="${initial:+,}m$i=127.0.0.1:$((base + 100 + i))"
	endpoints+="${endpoints:+,}127.0.0.1:$((base + i))"
done
for i in 1 2 3; do
	m="$work/m$i"
	mkdir -p "$m"
	env -u ARBOR_ENDPOINTS "$work/arbor" server --name "m$i" --data-dir "$m/data" \
		--client-addr "127.0.0.1:$((base + i))" --peer-addr "127.0.0.1:$((base + 100 + i))" \
		--gossip-addr "127.0.0.1:$((base + 200 + i))" --initial-cluster "$initial" \
		--snapshot-entries "$every" >"$m/server.log" 2>&1 &
	echo $! >"$m/pid"
done
ready() { curl -fsS "http://127.0.0.1:$((base + $1))/readyz"; }
members_up "$work" arbor "be ready" 60 ready "$endpoints" >/dev/null

# poll: every 0.5 s, a line per member: unix time, member, term, is_leader,
# leader changes, snapshots saved, nodes, RSS, log sync seconds and
# count (cumulative), CPU seconds.
poll() {
	while :; do
		now=$(date +%s.%N)
		for i in 1 2 3; do
			curl -fsS -m 5 "http://127.0.0.1:$((base + i))/metrics" 2>/dev/null | awk -v t="$now" -v m="m$i" '
				$1 == "arbor_raft_term" { term = $2 } $1 == "arbor_raft_is_leader" { lead = $2 }
				$1 == "arbor_raft_leader_changes_total" { lc = $2 } $1 == "arbor_raft_snapshots_saved_total" { ss = $2 }
				$1 == "arbor_nodes" { nodes = $2 } $1 == "process_resident_memory_bytes" { rss = $2 }
				$1 == "arbor_fsync_duration_seconds_sum" { fs = $2 } $1 == "arbor_fsync_duration_seconds_count" { fc = $2 }
				$1 == "process_cpu_seconds_total" { cpu = $2 }
				END { if (term != "") printf "%s %s %s %s %s %s %s %.0f %s %s %s\n", t, m, term, lead, lc, ss, nodes, rss, fs, fc, cpu }' || true
		done
		sleep 0.5
	done
}
poll >"$work/metrics.txt" &
poller=$!

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"$work/arbor" bench create --endpoints "$endpoints" --clients "$clients" --value-size 1024 \
	--ops "$ops" --op-timeout 30s --op-log "$work/ops.log" --json >"$work/bench.json" 2>"$work/bench.err" || true
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
for i in 1 2 3; do # log syncs (arbor_fsync_duration_seconds): how many, and how many took over 0.4 s and 0.8 s
	curl -fsS "http://127.0.0.1:$((base + i))/metrics" | awk -v m="m$i" '
		/^arbor_fsync_duration_seconds_bucket\{le="0.4096"\}/ { a = $2 } /^arbor_fsync_duration_seconds_bucket\{le="0.8192"\}/ { b = $2 }
		/^arbor_fsync_duration_seconds_count/ { n = $2 }
		END { printf "%s: %d log syncs, %d over 0.4 s, %d over 0.8 s\n", m, n, n - a, n - b }'
done >"$work/fsync.txt" || true
sleep 1
kill "$poller" 2>/dev/null || true
poller=""
snapfile=$(ls -S "$work"/m1/data/snap/ 2>/dev/null | head -1)
snapbytes=$(stat -c %s "$work/m1/data/snap/$snapfile" 2>/dev/null || echo 0)

python3 - "$work" "$load_before" "$load_after" "$snapbytes" <<'EOF' | tee "$work/summary.txt"
import json, re, sys
from datetime import datetime
work, load_before, load_after, snapbytes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def go_duration(s):
    total, units = 0.0, {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    for num, unit in re.findall(r"([0-9.]+)(h|ms|us|µs|ns|m|s)", s):
        total += float(num) * units[unit]
    return total

# Snapshot windows [start, end] in unix seconds, from every member's log.
windows = []
for i in (1, 2, 3):
    for line in open(f"{work}/m{i}/server.log"):
        if 'msg="saved snapshot"' not in line:
            continue
        f = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
        end = datetime.fromisoformat(f["time"]).timestamp()
        took = go_duration(f["took"])
        windows.append((end - took, end, f"m{i}", int(f["index"]), took))
windows.sort()

# Metric samples: leader and term stable?
samples = [l.split()[:8] for l in open(f"{work}/metrics.txt") if len(l.split()) == 11]
extra = [l.split() for l in open(f"{work}/metrics.txt") if len(l.split()) == 11]
first, changes, leaders = {}, [], set()
for t, m, term, lead, lc, ss, nodes, rss in samples:
    if m not in first:
        first[m] = (term, lead, lc, ss)
    elif (term, lead, lc) != first[m][:3]:
        changes.append(f"{m} at {t}: term {term}, leader {lead}, leader changes {lc}; first {first[m][:3]}")
    if lead == "1":
        leaders.add(m)
last = {}
for t, m, term, lead, lc, ss, nodes, rss in samples:
    last[m] = (term, lead, lc, ss, nodes, rss)

# Ops: during a snapshot when [end - latency, end] overlaps a window.
ops = []
for line in open(f"{work}/ops.log"):
    end, lat, res = line.split()
    end, lat = int(end) / 1e9, int(lat) / 1e9
    ops.append((end - lat, end, lat, res))
ops.sort()
merged = []
for s, e, *_ in windows:
    if merged and s <= merged[-1][1]:
        merged[-1][1] = max(merged[-1][1], e)
    else:
        merged.append([s, e])
during, between, errs = [], [], 0
j = 0
for s, e, lat, res in ops:
    if res != "ok":
        errs += 1
    while j < len(merged) and merged[j][1] < s:
        j += 1
    (during if j < len(merged) and merged[j][0] <= e else between).append(lat)

def p(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3 if xs else float("nan")

bench = json.load(open(f"{work}/bench.json")) if open(f"{work}/bench.json").read().strip() else {}
print(f"load average before {load_before}, after {load_after}")
print(f"bench: {bench.get('ops')} creates of 1 KiB by {bench.get('clients')} clients in {bench.get('elapsed_s', 0):.0f} s "
      f"({bench.get('ops_per_sec', 0):.0f}/s), p50 {bench.get('p50_ms')} ms, p99 {bench.get('p99_ms')} ms, "
      f"max {bench.get('max_ms')} ms, errors {bench.get('errors')}")
for m in sorted(last):
    term, lead, lc, ss, nodes, rss = last[m]
    print(f"{m}: term {term}, leader {lead}, leader changes {lc}, snapshots {int(float(ss)) - int(float(first[m][3]))} during the run, "
          f"nodes {nodes}, RSS {float(rss) / 1e6:.0f} MB")
print(open(f"{work}/fsync.txt").read(), end="")
print(f"newest snapshot file of m1: {snapbytes / 1e6:.0f} MB")
print(f"leader and term stable: {'yes' if not changes and len(leaders) == 1 else 'NO'} "
      f"({len(samples)} samples; leaders seen {sorted(leaders)}; {len(changes)} samples differ)")
for c in changes[:5]:
    print("  ", c)
print(f"snapshots: {len(windows)} over all members")
for s, e, m, idx, took in windows:
    print(f"  {m} index {idx}: {took:.3f} s")
if windows:
    tooks = sorted(w[4] for w in windows)
    print(f"snapshot took: median {tooks[len(tooks) // 2]:.3f} s, max {tooks[-1]:.3f} s; "
          f"some member was snapshotting {sum(e - s for s, e in merged):.0f} s of the run")
# Per sample interval: log sync time and CPU, during and between
# snapshots (an interval counts as during when it overlaps a window), over
# the creates' span only.
prev, acc = {}, {True: [0.0, 0, 0.0, 0.0], False: [0.0, 0, 0.0, 0.0]}
for t, m, *_, fs, fc, cpu in extra:
    t, fs, fc, cpu = float(t), float(fs), int(float(fc)), float(cpu)
    if m in prev:
        t0, fs0, fc0, cpu0 = prev[m]
        d = any(s < t and e > t0 for s, e in merged)
        if t0 < ops[0][0] or t > ops[-1][1]:  # outside the creates (roughly: ops is in start order)
            prev[m] = (t, fs, fc, cpu)
            continue
        a = acc[d]
        a[0] += fs - fs0; a[1] += fc - fc0; a[2] += cpu - cpu0; a[3] += t - t0
    prev[m] = (t, fs, fc, cpu)
for d in (False, True):
    fs, fc, cpu, secs = acc[d]
    if fc and secs:
        print(f"{'during' if d else 'between'} snapshots: log sync mean {fs / fc * 1e3:.2f} ms ({fc} commits), "
              f"members' CPU {cpu / secs * 3:.2f} cores (of 2)")
pd, pb = p(during, 0.99), p(between, 0.99)
print(f"write p99 during snapshots {pd:.1f} ms ({len(during)} creates), between {pb:.1f} ms ({len(between)} creates): "
      f"ratio {pd / pb:.2f} (target <= 3); p50 {p(during, 0.5):.1f} vs {p(between, 0.5):.1f} ms, "
      f"max {max(during, default=0) * 1e3:.0f} vs {max(between, default=0) * 1e3:.0f} ms; failed creates {errs}")
EOF
