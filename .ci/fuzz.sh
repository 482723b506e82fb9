#!/usr/bin/env bash
# Runs every go test -fuzz target of the module briefly (FUZZTIME each,
# default 5s), on top of its seed corpus in testdata/fuzz. A longer run:
#   FUZZTIME=10m .ci/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-5s}"
total=0
for pkg in $(go list ./...); do
	targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
	for target in $targets; do
		echo "fuzz: $pkg $target for $fuzztime"
		out=$(go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s 2>&1) || {
			echo "$out"
			echo "fuzz: $target FAILED (the failing input is saved under testdata/fuzz/$target)"
			exit 1
		}
		execs=$(echo "$out" | grep -o 'execs: [0-9]*' | tail -1 | awk '{print $2}')
		total=$((total + ${execs:-0}))
	done
done
echo "fuzz: every target passed; $total executions in all"
