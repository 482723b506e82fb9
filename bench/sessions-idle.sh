#!/usr/bin/env bash
# sessions-idle.sh [TOTAL]
#
# TOTAL (default 50000) live sessions, each with one ephemeral node and its
# heartbeats, on a 3-member Arbor cluster of this checkout on loopback:
# each member's memory and CPU while the sessions sit idle, and the session
# open rate. One process may hold at most `ulimit -n` descriptors (20,000
# here, and not raisable), so the sessions come from three `arbor bench
# sessions` processes, one per member, holding 38%, 38% and 24% of them:
# with unequal shares, two members' growth tells the cost of a connection
# (c) apart from the cost every member pays for every session (r):
#   growth(m) = held(m) * c + TOTAL * r.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
total=${1:-50000}
hold=${HOLD:-150s} # long enough that every process still holds when the figures are taken
# Each client pings every third of its session timeout; 30 s (Curator's
# default is 60 s) keeps 50,000 sessions' heartbeats within what two cores
# shared by the members and three client processes can answer.
session_timeout=${SESSION_TIMEOUT:-30s}
work=$(mktemp -d "${TMPDIR:-/tmp}/arbor-idle.XXXXXX")
cleanup() { "$here/scripts/arbor.sh" stop "$work/cluster" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

(cd "$here/.." && go build -o "$work/arbor" ./cmd/arbor)
eps=$(ARBOR="$work/arbor" "$here/scripts/arbor.sh" start "$work/cluster")
IFS=, read -r -a ep <<<"$eps"
shares=($((total * 38 / 100)) $((total * 38 / 100)) $((total - 2 * (total * 38 / 100))))

# metric NAME ADDR: one unlabelled sample.
metric() { curl -fsS "http://$2/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
gomem() { awk -v a="$(metric go_memstats_heap_inuse_bytes "$1")" -v b="$(metric go_memstats_stack_inuse_bytes "$1")" 'BEGIN { printf "%.0f", a + b }'; }
snap() { # snap FILE: rss, go memory, cpu seconds, sessions held, leader, per member
	for a in "${ep[@]}"; do
		echo "$a $(metric process_resident_memory_bytes "$a") $(gomem "$a") $(metric process_cpu_seconds_total "$a") \
			$(metric arbor_sessions_connected "$a") $(metric arbor_raft_is_leader "$a")"
	done >"$1"
}

snap "$work/before"
start=$(date +%s.%N)
for i in 0 1 2; do
	"$work/arbor" bench sessions --endpoints "${ep[$i]}" --sessions "${shares[$i]}" --clients 16 \
		--hold "$hold" --session-timeout "$session_timeout" --op-timeout 20s --json >"$work/bench$i.json" 2>"$work/bench$i.log" &
done
# Wait until every process has opened its sessions (it says so, then holds).
for i in 0 1 2; do
	until grep -q "holding" "$work/bench$i.log"; do sleep 1; done
done
opened=$(date +%s.%N)
sleep 10 # let the opening settle (allocation, GC)
snap "$work/open"
sleep 30
snap "$work/held"
wait

awk -v s="$start" -v o="$opened" -v n="$total" -v sh="${shares[*]}" 'BEGIN { printf "sessions: %s (total %d) opened in %.1f s: %.0f sessions/s\n", sh, n, o - s, n / (o - s) }'
paste "$work/before" "$work/open" "$work/held" | awk -v total="$total" '
{ addr=$1; rss0=$2; go0=$3; rss=$14; go=$15; cpu0=$10; cpu1=$16; held=$17; lead=$18
  printf "member %s (%s, holds %d): RSS +%.0f MB, Go memory +%.0f MB, %.3f cores while idle\n", addr, lead==1?"leader":"follower", held, (rss-rss0)/1e6, (go-go0)/1e6, (cpu1-cpu0)/30
  H[NR]=held; R[NR]=rss-rss0; G[NR]=go-go0 }
END {
  # the two members holding the most and the fewest sessions
  hi=1; lo=1; for (i=2;i<=NR;i++) { if (H[i]>H[hi]) hi=i; if (H[i]<H[lo]) lo=i }
  c=(R[hi]-R[lo])/(H[hi]-H[lo]); r=(R[lo]-H[lo]*c)/total
  cg=(G[hi]-G[lo])/(H[hi]-H[lo]); rg=(G[lo]-H[lo]*cg)/total
  printf "per connection held: %.0f B RSS (%.0f B Go memory); per session on every member: %.0f B RSS (%.0f B Go memory)\n", c, cg, r, rg
  printf "so: %.0f B per idle session on the member holding it, %.0f B on the others (RSS)\n", c+r, r
}'
for i in 0 1 2; do
	jq -r '"bench \(.system) \(.clients) clients: \(.ops) sessions, \(.ops_per_sec|floor)/s, p50 \(.p50_ms) ms, errors \(.errors), lost \(.sessions_lost // 0)"' "$work/bench$i.json"
done
