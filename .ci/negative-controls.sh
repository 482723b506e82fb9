#!/usr/bin/env bash
# Negative controls: for each deliberate bug (a build tag, see
# docs/reliability.md) run the short in-process fault suite built with it.
# The suite must FAIL every time; a control that passes means the checkers
# missed a real bug, and this script fails.
#   ARBOR_FAULT_SEEDS / ARBOR_FAULT_DURATION tune the runs (default 8 × 5s;
#   each run stops at the first failing seed); ARBOR_CONTROLS="tag ..."
#   runs only those controls.
set -uo pipefail
cd "$(dirname "$0")/.."

controls=(${ARBOR_CONTROLS:-bug_staleread bug_ackbeforecommit bug_applyclock bug_splitclose bug_expirekeeps bug_earlyexpiry bug_watchdrop bug_lockoverlap bug_walsynclag bug_restorekeepswatches bug_cachesyncedge})
export ARBOR_FAULT_SEEDS="${ARBOR_FAULT_SEEDS:-8}"
export ARBOR_FAULT_DURATION="${ARBOR_FAULT_DURATION:-5s}"

# tests_for names the tests a control runs: the random suite, and for a
# bug on a path it reaches only by chance, the scenario that takes it.
tests_for() {
	case "$1" in
	bug_restorekeepswatches) echo 'TestWatcherAcrossSnapshotInstall$' ;;
	*) echo 'TestFaults$' ;;
	esac
}

caught=()
missed=()
for tag in "${controls[@]}"; do
	log=$(mktemp)
	start=$SECONDS
	if go test -count=1 -failfast -tags "$tag" -timeout 5m -run "$(tests_for "$tag")" -v ./server/servertest/faults >"$log" 2>&1; then
		missed+=("$tag")
		echo "MISSED  $tag: the fault suite passed with the bug in ($((SECONDS - start))s)"
	elif grep -qE -- '--- FAIL: (TestFaults/seed=|TestWatcherAcrossSnapshotInstall)' "$log"; then
		caught+=("$tag")
		seed=$(grep -m1 -oE -- '--- FAIL: (TestFaults/seed=[0-9]*|TestWatcherAcrossSnapshotInstall)' "$log" | sed 's/.*seed=/seed /; s/.*FAIL: //')
		what=$(grep -m1 -oE 'not linearizable|went back to zxid|saw an ephemeral|ephemeral .* remains|state hashes differ|did not converge|corrupt data|inside its .* timeout|seen after a resume answered SESSION_EXPIRED|still there .* after healing|never reached it|view its events build differs|two holders at once|had not learned it lost the lock|tree cache: [^"]*' "$log" || echo "see log")
		echo "CAUGHT  $tag: $seed, $what ($((SECONDS - start))s)"
	else
		# Failed, but not through a seed's checks (build error, panic...).
		missed+=("$tag")
		echo "BROKEN  $tag: the suite failed without a checker verdict:"
		tail -n 30 "$log"
	fi
	rm -f "$log"
done

echo "negative controls caught: ${caught[*]:-none}"
if [ ${#missed[@]} -gt 0 ]; then
	echo "negative controls NOT caught: ${missed[*]}"
	exit 1
fi
