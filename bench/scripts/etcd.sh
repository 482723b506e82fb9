#!/usr/bin/env bash
# etcd.sh start|stop DIR
#
# start: runs a 3-member etcd cluster on 127.0.0.1 (client ports
# BASE+1..BASE+3, BASE=${ETCD_PORT_BASE:-23790}; peer ports BASE+1001..)
# with data in DIR/m1..m3, started directly (no systemd). fsync is on
# (etcd has no switch to turn it off). Waits until every member reports
# healthy, then prints the client endpoints, comma-separated, and writes
# them to DIR/endpoints.
# stop: stops the members and leaves DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

cmd=${1:?usage: etcd.sh start|stop DIR}
dir=${2:?usage: etcd.sh start|stop DIR}
base=${ETCD_PORT_BASE:-23790}
etcd=${ETCD:-etcd}

healthy() {
	exec 3<>"/dev/tcp/127.0.0.1/$((base + $1))" || return 1
	printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	cat <&3 | grep -q '"health":"true"'
	local ok=$?
	exec 3<&-
	return $ok
}

case $cmd in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	initial=""
	for i in 1 2 3; do
		initial+="${initial:+,}m$i=http://127.0.0.1:$((base + 1000 + i))"
	done
	endpoints=""
	for i in 1 2 3; do
		m="$dir/m$i"
		mkdir -p "$m"
		"$etcd" --name "m$i" --data-dir "$m/data" \
			--listen-client-urls "http://127.0.0.1:$((base + i))" \
			--advertise-client-urls "http://127.0.0.1:$((base + i))" \
			--listen-peer-urls "http://127.0.0.1:$((base + 1000 + i))" \
			--initial-advertise-peer-urls "http://127.0.0.1:$((base + 1000 + i))" \
			--initial-cluster "$initial" --initial-cluster-state new \
			--initial-cluster-token "arbor-bench-$$" \
			${ETCD_OPTS:-} >"$m/server.log" 2>&1 &
		echo $! >"$m/pid"
		endpoints+="${endpoints:+,}127.0.0.1:$((base + i))"
	done
	members_up "$dir" etcd "be healthy" 60 healthy "$endpoints"
	;;
stop)
	stop_pids "$dir"
	;;
*)
	echo "usage: etcd.sh start|stop DIR" >&2
	exit 2
	;;
esac
