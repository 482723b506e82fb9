#!/usr/bin/env bash
# locks.sh [OUTDIR] [matrix flags...]
#
# Locks and elections side by side, in one command: builds arbor and the
# matrix from this checkout, starts 3-member clusters of Arbor, ZooKeeper
# and etcd on loopback (data in a temp dir, fsync on), and runs
#   - lock: C contenders (a session each) on one lock, C = 2 and 16, 10 s a
#     cell, 3 repetitions: grants (handoffs) per second and acquire latency;
#   - elect-failover: kill -9 of the leading candidate's process to the next
#     candidate's election, 3 rounds per system, 10 s session timeouts;
# then stops the clusters and prints the two tables of medians, also left
# in OUTDIR/locks.md and OUTDIR/elect-failover.md (every run in the .jsonl
# files beside them). OUTDIR defaults to ./results-locks. Extra flags go to
# the lock matrix, e.g. --duration 2s --reps 1 for a quick look.
#
# Needs ZooKeeper and etcd installed: scripts/install.sh (Debian).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-results-locks}
shift || true
mkdir -p "$out"
out=$(cd "$out" && pwd)

. "$here/scripts/lib.sh"
start_comparison locks

note="$(date -u +%Y-%m-%dT%H:%MZ); $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); \
arbor $(cd "$here/.." && git rev-parse --short HEAD 2>/dev/null || echo unknown); \
$(dpkg-query -W -f='${Package} ${Version}; ' zookeeper etcd-server 2>/dev/null) $(go version); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
systems=(--arbor "$arbor_eps" --zookeeper "$zk_eps" --etcd "$etcd_eps")

"$work/bin/matrix" "${systems[@]}" --workloads lock --clients 2,16 --reps 3 --duration 10s \
	--out "$out/locks.md" --raw "$out/locks.jsonl" --note "$note" "$@"
# One round per repetition: each takes about a session timeout (10 s).
"$work/bin/matrix" "${systems[@]}" --workloads elect-failover --clients 1 --reps 3 \
	--out "$out/elect-failover.md" --raw "$out/elect-failover.jsonl" --note "$note"
sed -n '/^## /,$p' "$out/locks.md" "$out/elect-failover.md"
echo "wrote $out/locks.md and $out/elect-failover.md (load after: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
