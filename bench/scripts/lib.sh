# Shared helpers of the cluster scripts; sourced, not run.

# wait_for DESCRIPTION SECONDS COMMAND...: runs COMMAND every 0.2s until it
# succeeds, failing after SECONDS.
wait_for() {
	local what=$1 secs=$2; shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			echo "timed out after ${secs}s waiting for $what" >&2
			return 1
		fi
		sleep 0.2
	done
}

# stop_pids DIR: SIGTERM every process with a DIR/*/pid file, SIGKILL
# after 10s, then remove the pid files.
stop_pids() {
	local dir=$1 pidfile pid
	for pidfile in "$dir"/*/pid; do
		[ -f "$pidfile" ] || continue
		pid=$(cat "$pidfile")
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pidfile in "$dir"/*/pid; do
		[ -f "$pidfile" ] || continue
		pid=$(cat "$pidfile")
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$pid" 2>/dev/null || true
		rm -f "$pidfile"
	done
}

# members_up DIR SYSTEM STATE SECONDS CHECK ENDPOINTS: waits until CHECK i
# succeeds for members 1..3 (showing a member's log tail if one never does),
# then writes ENDPOINTS to DIR/endpoints and prints them.
members_up() {
	local dir=$1 system=$2 state=$3 secs=$4 check=$5 endpoints=$6 i
	for i in 1 2 3; do
		if ! wait_for "$system m$i to $state" "$secs" "$check" "$i"; then
			tail -20 "$dir/m$i/server.log" >&2
			exit 1
		fi
	done
	# A member that exited (its port taken) while another process answers
	# the check on that port would make every figure that system's.
	for i in 1 2 3; do
		if ! kill -0 "$(cat "$dir/m$i/pid")" 2>/dev/null; then
			echo "$system m$i exited; its log:" >&2
			tail -20 "$dir/m$i/server.log" >&2
			exit 1
		fi
	done
	echo "$endpoints" >"$dir/endpoints"
	echo "$endpoints"
}

# start_comparison NAME: the set-up of the scripts that compare Arbor with
# ZooKeeper and etcd (run-matrix.sh, locks.sh, watches.sh,
# cpu-per-write.sh), which set $here to bench/. Checks that ZooKeeper and
# etcd are installed, makes $work (removed at exit, every cluster stopped
# first), builds arbor (this checkout) and the matrix into $work/bin, starts
# a 3-member cluster of each system and sets arbor_eps, zk_eps and
# etcd_eps to their client endpoints.
start_comparison() {
	if ! command -v etcd >/dev/null || [ ! -f /usr/share/java/zookeeper.jar ]; then
		echo "ZooKeeper or etcd is missing: run $here/scripts/install.sh first" >&2
		exit 1
	fi
	work=$(mktemp -d "${TMPDIR:-/tmp}/arbor-$1.XXXXXX")
	trap stop_comparison EXIT
	echo "building arbor and the matrix" >&2
	(cd "$here/.." && go build -o "$work/bin/arbor" ./cmd/arbor)
	(cd "$here" && go build -o "$work/bin/matrix" ./cmd/matrix)
	echo "starting clusters" >&2
	arbor_eps=$(ARBOR="$work/bin/arbor" "$here/scripts/arbor.sh" start "$work/arbor")
	zk_eps=$("$here/scripts/zookeeper.sh" start "$work/zookeeper")
	etcd_eps=$("$here/scripts/etcd.sh" start "$work/etcd")
}

# stop_comparison: stops start_comparison's clusters and removes $work.
stop_comparison() {
	"$here/scripts/arbor.sh" stop "$work/arbor" || true
	"$here/scripts/zookeeper.sh" stop "$work/zookeeper" || true
	"$here/scripts/etcd.sh" stop "$work/etcd" || true
	rm -rf "$work"
}
