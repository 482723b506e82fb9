#!/usr/bin/env bash
# cpu-per-write.sh [OUTDIR] [ROUNDS] [DURATION]
#
# Server CPU per replicated write: starts 3-member clusters of Arbor (this
# checkout), ZooKeeper and etcd on loopback (fsync on), then, systems taking
# turns for ROUNDS rounds (default 3), runs cmd/matrix's set and create at 64
# clients for DURATION (default 5s) against one system at a time and reads
# the user+system CPU time of its three member processes from /proc before
# and after. Prints, per system and workload, the median over the rounds of
# (members' CPU seconds) / (operations), in microseconds, and leaves every
# round in OUTDIR/cpu.tsv (default ./results).
#
# Needs ZooKeeper and etcd installed: scripts/install.sh (Debian).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-results}
rounds=${2:-3}
duration=${3:-5s}
mkdir -p "$out"
out=$(cd "$out" && pwd)

. "$here/scripts/lib.sh"
start_comparison cpu
declare -A eps=([arbor]=$arbor_eps [zookeeper]=$zk_eps [etcd]=$etcd_eps)

# cpu_ticks SYSTEM: the summed utime+stime (clock ticks) of its members.
cpu_ticks() {
	local total=0 pidfile pid
	for pidfile in "$work/$1"/*/pid; do
		pid=$(cat "$pidfile")
		# Fields 14 and 15 of /proc/PID/stat, after the ")" that ends the name.
		set -- $(sed 's/.*) //' "/proc/$pid/stat")
		total=$((total + ${12} + ${13}))
	done
	echo "$total"
}

hz=$(getconf CLK_TCK)
tsv="$out/cpu.tsv"
printf 'round\tsystem\tworkload\tops\tcpu_s\tus_per_op\n' >"$tsv"
for round in $(seq "$rounds"); do
	for w in set create; do
		for sys in arbor zookeeper etcd; do
			before=$(cpu_ticks "$sys")
			"$work/bin/matrix" --"$sys" "${eps[$sys]}" --workloads "$w" --clients 64 --reps 1 \
				--duration "$duration" --out "$work/r.md" --raw "$work/r.jsonl" 2>/dev/null
			after=$(cpu_ticks "$sys")
			ops=$(python3 -c 'import json,sys; print(sum(json.loads(l).get("ops",0) for l in open(sys.argv[1])))' "$work/r.jsonl")
			python3 - "$round" "$sys" "$w" "$ops" "$before" "$after" "$hz" >>"$tsv" <<'PY'
import sys
r, s, w, ops, b, a, hz = sys.argv[1:]
cpu = (int(a) - int(b)) / int(hz)
print(f"{r}\t{s}\t{w}\t{ops}\t{cpu:.2f}\t{cpu / max(int(ops), 1) * 1e6:.1f}")
PY
			tail -1 "$tsv" >&2
		done
	done
done
python3 - "$tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print("| workload | arbor µs/op | zookeeper µs/op | etcd µs/op |")
print("| --- | ---: | ---: | ---: |")
for w in ("set", "create"):
    cells = []
    for s in ("arbor", "zookeeper", "etcd"):
        v = [float(r["us_per_op"]) for r in rows if r["system"] == s and r["workload"] == w]
        cells.append(f"{statistics.median(v):.0f}" if v else "–")
    print(f"| {w} | " + " | ".join(cells) + " |")
PY
