#!/usr/bin/env bash
# watches.sh [OUTDIR] [matrix flags...]
#
# Watches side by side, in one command: builds arbor and the matrix from
# this checkout, starts 3-member clusters of Arbor, ZooKeeper and etcd on
# loopback (data in a temp dir, fsync on), and runs
#   - watch: W watchers over C sessions (spread over the members) watch one
#     node a writer sets at a steady rate; W/C/rate = 1/1/200, 100/10/200
#     and 10000/30/10 (10,000 watchers at 200/s would be 2M events a
#     second, more than one process on this machine decodes), persistent
#     and one-shot watches (each system runs the modes it has), 5 s a
#     cell: latency from the write's ack to each event, events delivered;
#   - watch-memory: 100,000 watches (each on its own node) over 20
#     sessions: member memory per watch;
#   - set and set-watched at 16 clients: write throughput without and with
#     1,000 recursive watches of / (over 10 sessions);
# every cell 3 times (medians), then stops the clusters and prints the
# tables, also left in OUTDIR/*.md (every run in the .jsonl files beside
# them). OUTDIR defaults to ./results-watches. Extra flags go to every
# matrix, e.g. --reps 1 --duration 2s for a quick look.
#
# Needs ZooKeeper and etcd installed: scripts/install.sh (Debian).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-results-watches}
shift || true
mkdir -p "$out"
out=$(cd "$out" && pwd)

. "$here/scripts/lib.sh"
start_comparison watches
zk_pids=$(cat "$work"/zookeeper/m*/pid | paste -sd,)

note="$(date -u +%Y-%m-%dT%H:%MZ); $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); \
arbor $(cd "$here/.." && git rev-parse --short HEAD 2>/dev/null || echo unknown); \
$(dpkg-query -W -f='${Package} ${Version}; ' zookeeper etcd-server 2>/dev/null) $(go version); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
systems=(--arbor "$arbor_eps" --zookeeper "$zk_eps" --etcd "$etcd_eps")
m() { "$work/bin/matrix" "${systems[@]}" --reps 3 --note "$note" "$@"; }

# watchers sessions rate
for row in "1 1 200" "100 10 200" "10000 30 10"; do
	read -r w c rate <<<"$row"
	m --workloads watch --watchers "$w" --clients "$c" --rate "$rate" --duration 5s \
		--watch-modes persistent,oneshot --out "$out/watch-$w.md" --raw "$out/watch-$w.jsonl" "$@"
done
m --workloads watch-memory --watchers 100000 --clients 20 --watch-modes persistent,oneshot \
	--zookeeper-pids "$zk_pids" --out "$out/watch-memory.md" --raw "$out/watch-memory.jsonl" "$@"
m --workloads set,set-watched --clients 16 --watchers 1000 --watch-sessions 10 --duration 5s \
	--out "$out/set-watched.md" --raw "$out/set-watched.jsonl" "$@"
for f in watch-1 watch-100 watch-10000 watch-memory set-watched; do
	sed -n '/^## /,$p' "$out/$f.md"
done
echo "wrote $out/*.md (load after: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
