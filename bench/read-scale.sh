#!/usr/bin/env bash
# read-scale.sh: read throughput of 3 voters against 3 voters plus 2
# learners. Builds arbor from this checkout, starts 3 members on loopback
# (client ports BASE+1..3, BASE=${ARBOR_PORT_BASE:-37400}), runs `arbor bench
# get` (local, then linearizable; 32 clients, 8 s, twice each) over the
# voters, adds two learners with --join --learner, and runs the same over
# all five (the client spreads its sessions over the endpoints). Prints one
# line per run: ops/s, p50 ms, p99 ms, max ms.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${ARBOR_PORT_BASE:-37400}
w=$(mktemp -d "${TMPDIR:-/tmp}/arbor-readscale.XXXXXX")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; sleep 1; rm -rf "$w"' EXIT
(cd "$here/.." && go build -o "$w/arbor" ./cmd/arbor)
A=$w/arbor
ready() { curl -fs "127.0.0.1:$((base + $1))/readyz" >/dev/null; }
start() { # start N NAME FLAGS...
	local i=$1 name=$2
	shift 2
	env -u ARBOR_ENDPOINTS "$A" server --name "$name" --data-dir "$w/$name" --client-addr "127.0.0.1:$((base + i))" \
		--peer-addr "127.0.0.1:$((base + 100 + i))" --gossip-addr "127.0.0.1:$((base + 200 + i))" "$@" >"$w/$name.log" 2>&1 &
	pids+=($!)
}
wait_ready() {
	for _ in $(seq 300); do ready "$1" && return; sleep 0.2; done
	echo "member $1 not ready; its log:" >&2
	tail -20 "$w"/*.log >&2
	exit 1
}
run() { # run LABEL ENDPOINTS
	for mode in --local ""; do
		for r in 1 2; do
			echo -n "$1 ${mode:---linearizable} run $r: "
			env -u ARBOR_ENDPOINTS "$A" bench get $mode --clients 32 --duration 8s --endpoints "$2" 2>/dev/null | tail -1 | awk '{print $5, $6, $7, $8}'
		done
	done
}
init="m1=127.0.0.1:$((base + 101)),m2=127.0.0.1:$((base + 102)),m3=127.0.0.1:$((base + 103))"
for i in 1 2 3; do start "$i" "m$i" --initial-cluster "$init"; done
for i in 1 2 3; do wait_ready "$i"; done
voters=127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))
run "3 voters" "$voters"
for i in 4 5; do start "$i" "l$((i - 3))" --join "127.0.0.1:$((base + 201))" --learner; done
for i in 4 5; do wait_ready "$i"; done
"$A" members --endpoints "127.0.0.1:$((base + 1))"
run "3 voters + 2 learners" "$voters,127.0.0.1:$((base + 4)),127.0.0.1:$((base + 5))"
