#!/usr/bin/env bash
# zookeeper.sh start|stop DIR
#
# start: runs a 3-member ZooKeeper ensemble on 127.0.0.1 (client ports
# BASE+1..BASE+3, BASE=${ZK_PORT_BASE:-21810}; quorum and election ports
# BASE+1001.., BASE+2001..) with data in DIR/m1..m3, each member with its
# own zoo.cfg and myid, started directly with java (no systemd). fsync is
# on (ZooKeeper's default forceSync=yes). Waits until every member serves
# in a quorum, then prints the client endpoints, comma-separated, and
# writes them to DIR/endpoints.
# stop: stops the members and leaves DIR (remove it yourself).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

cmd=${1:?usage: zookeeper.sh start|stop DIR}
dir=${2:?usage: zookeeper.sh start|stop DIR}
base=${ZK_PORT_BASE:-21810}
# The package jar names its dependencies; the log4j binding makes the
# members log (to DIR/mN/server.log) instead of dropping everything.
classpath=${ZK_CLASSPATH:-/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar}
java=${JAVA:-java}

# srvr MEMBER: the member's answer to the srvr four-letter word.
srvr() {
	exec 3<>"/dev/tcp/127.0.0.1/$((base + $1))" || return 1
	printf srvr >&3
	cat <&3
	exec 3<&-
}

in_quorum() { srvr "$1" | grep -Eq '^Mode: (leader|follower)'; }

case $cmd in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	servers=""
	for i in 1 2 3; do
		servers+="server.$i=127.0.0.1:$((base + 1000 + i)):$((base + 2000 + i))"$'\n'
	done
	endpoints=""
	for i in 1 2 3; do
		m="$dir/m$i"
		mkdir -p "$m/data"
		echo "$i" >"$m/data/myid"
		cat >"$m/zoo.cfg" <<-CFG
			tickTime=2000
			initLimit=10
			syncLimit=5
			dataDir=$m/data
			clientPort=$((base + i))
			clientPortAddress=127.0.0.1
			maxClientCnxns=0
			admin.enableServer=false
			4lw.commands.whitelist=srvr,ruok,stat
			forceSync=yes
			$servers
		CFG
		# The log4j file of the package, logging to the console only.
		"$java" -cp "/etc/zookeeper/conf:$classpath" \
			-Dzookeeper.log.dir="$m" -Dzookeeper.root.logger=${ZK_LOG_LEVEL:-WARN},CONSOLE \
			-Dlog4j.configuration=file:/etc/zookeeper/conf/log4j.properties \
			${ZK_JAVA_OPTS:-} \
			org.apache.zookeeper.server.quorum.QuorumPeerMain "$m/zoo.cfg" \
			>"$m/server.log" 2>&1 &
		echo $! >"$m/pid"
		endpoints+="${endpoints:+,}127.0.0.1:$((base + i))"
	done
	members_up "$dir" zookeeper "join a quorum" 90 in_quorum "$endpoints"
	;;
stop)
	stop_pids "$dir"
	;;
*)
	echo "usage: zookeeper.sh start|stop DIR" >&2
	exit 2
	;;
esac
