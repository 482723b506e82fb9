#!/usr/bin/env bash
# Installs the systems Arbor is compared with, from Debian: ZooKeeper 3.8
# (package zookeeper, with its JRE) and etcd 3.4 (package etcd-server).
# The packages' systemd units are not used: zookeeper.sh and etcd.sh start
# the processes directly. jq is for bench/sessions-idle.sh.
set -euo pipefail
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y zookeeper etcd-server jq
# Debian may start the packaged single-member services; they would hold
# the default ports and compete for the CPU.
for svc in zookeeper etcd; do
	if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
		$sudo systemctl stop "$svc" || true
	fi
done
java -version 2>&1 | head -1
etcd --version | head -1
dpkg-query -W -f='${Package} ${Version}\n' zookeeper etcd-server
