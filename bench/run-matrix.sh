#!/usr/bin/env bash
# run-matrix.sh [OUTDIR] [matrix flags...]
#
# The whole comparison in one command: builds arbor from this checkout,
# starts 3-member clusters of Arbor, ZooKeeper and etcd on loopback (data
# in a temp dir, fsync on), runs cmd/matrix against all three (workloads
# create, set, get-local, get-linearizable at 1, 16 and 64 clients, systems
# interleaved, every cell 3 times), stops the clusters, and leaves
# OUTDIR/results.md (medians) and OUTDIR/results.jsonl (every run).
# OUTDIR defaults to ./results. Extra flags go to cmd/matrix, e.g.
# --duration 5s --reps 1 --clients 1,16 for a quick look.
#
# Needs ZooKeeper and etcd installed: scripts/install.sh (Debian).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-results}
shift || true
mkdir -p "$out"
out=$(cd "$out" && pwd)

. "$here/scripts/lib.sh"
start_comparison matrix

note="$(date -u +%Y-%m-%dT%H:%MZ); $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); \
arbor $(cd "$here/.." && git rev-parse --short HEAD 2>/dev/null || echo unknown); \
$(dpkg-query -W -f='${Package} ${Version}; ' zookeeper etcd-server 2>/dev/null) $(go version)"

"$work/bin/matrix" --arbor "$arbor_eps" --zookeeper "$zk_eps" --etcd "$etcd_eps" \
	--out "$out/results.md" --raw "$out/results.jsonl" --note "$note" "$@"
echo "wrote $out/results.md and $out/results.jsonl" >&2
