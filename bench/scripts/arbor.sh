#!/usr/bin/env bash
# arbor.sh start|stop DIR
#
# start: runs a 3-member Arbor cluster of ${ARBOR:-arbor} on 127.0.0.1
# (client ports BASE+1..BASE+3, BASE=${ARBOR_PORT_BASE:-27400}; peer ports
# BASE+101.., gossip BASE+201..) with data in DIR/m1..m3 (fsync on, the
# default). Waits until every member is ready, then prints the client
# endpoints, comma-separated, and writes them to DIR/endpoints.
# stop: stops the members (SIGTERM) and leaves DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

cmd=${1:?usage: arbor.sh start|stop DIR}
dir=${2:?usage: arbor.sh start|stop DIR}
base=${ARBOR_PORT_BASE:-27400}
arbor=${ARBOR:-arbor}

ready() { curl -fsS "http://127.0.0.1:$((base + $1))/readyz"; }

case $cmd in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	initial=""
	for i in 1 2 3; do
		initial+="${initial:+,}m$i=127.0.0.1:$((base + 100 + i))"
	done
	endpoints=""
	for i in 1 2 3; do
		m="$dir/m$i"
		mkdir -p "$m"
		# env -u: the bench's own ARBOR_* settings are not the member's.
		env -u ARBOR_ENDPOINTS "$arbor" server --name "m$i" --data-dir "$m/data" \
			--client-addr "127.0.0.1:$((base + i))" \
			--peer-addr "127.0.0.1:$((base + 100 + i))" \
			--gossip-addr "127.0.0.1:$((base + 200 + i))" \
			--initial-cluster "$initial" >"$m/server.log" 2>&1 &
		echo $! >"$m/pid"
		endpoints+="${endpoints:+,}127.0.0.1:$((base + i))"
	done
	members_up "$dir" arbor "be ready" 60 ready "$endpoints"
	;;
stop)
	stop_pids "$dir"
	;;
*)
	echo "usage: arbor.sh start|stop DIR" >&2
	exit 2
	;;
esac
