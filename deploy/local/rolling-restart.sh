#!/usr/bin/env bash
# Restarts every node of a cluster started by deploy/local/cluster.sh, one at a time: each stops gracefully (its MQTT
# server first, so its devices reconnect to the others through the balancer, its persistent sessions handed over,
# then it leaves the cluster), starts again and is ready (/readyz) before the next one goes.
#   deploy/local/rolling-restart.sh [PAUSE]     PAUSE: seconds between nodes (default 5)
# IOT_RUN_DIR: the cluster's run directory (deploy/local/run).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
run=${IOT_RUN_DIR:-$here/run}
pause=${1:-5}
shopt -s nullglob
pids=("$run"/node-*.pid)
((${#pids[@]})) || { echo "rolling-restart.sh: no cluster running from $run (deploy/local/cluster.sh N)" >&2; exit 1; }
nodes=$(printf '%s\n' "${pids[@]}" | sed -E 's/.*node-([0-9]+)\.pid/\1/' | sort -n)
for i in $nodes; do
  "$here/cluster.sh" restart "$i"
  sleep "$pause"
done
echo "rolling restart of $(echo "$nodes" | wc -w) node(s) done"
