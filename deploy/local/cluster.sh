#!/usr/bin/env bash
# Runs an N-node OrleansIot cluster on this machine (loopback), all nodes on one PostgreSQL.
#   deploy/local/cluster.sh N       build once, start N silos, wait until each answers /health
#   deploy/local/cluster.sh stop    stop them (graceful, then forced after 30 s)
# Node i (1-based) listens on MQTT IOT_MQTT_BASE+10*(i-1) (1883), HTTP IOT_HTTP_BASE+10*(i-1) (8080),
# MQTT over mTLS IOT_MQTTS_BASE+10*(i-1) (8883), HTTPS IOT_HTTPS_BASE+10*(i-1) (8443),
# Orleans silo IOT_SILO_BASE+i-1 (11111) and gateway IOT_GATEWAY_BASE+i-1 (30000).
# A development cluster: devices may also connect without certificates on the plain port
# (Iot__Auth__AllowAnonymous, default true here); the API takes Iot__Auth__BootstrapAdminKey (default below).
# PostgreSQL: ConnectionStrings__Iot if set, else a throwaway server from deploy/local/postgres.sh.
# Any failure (build, database, a node that exits or does not become ready) stops it with the reason on stderr.
# IOT_SILO_DLL: run this built OrleansIot.Silo.dll instead of building the Release one. IOT_RUN_DIR: where the
# nodes' logs and pid files go (deploy/local/run).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
run=${IOT_RUN_DIR:-$here/run}
mkdir -p "$run"

stop() {
  shopt -s nullglob
  local pids=()
  for f in "$run"/node-*.pid; do
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; pids+=("$pid"); fi
    rm -f "$f"
  done
  for _ in $(seq 1 300); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  echo "stopped ${#pids[@]} node(s)"
}

if [[ "${1:-}" == "stop" ]]; then stop; exit 0; fi
n=${1:?usage: cluster.sh N | cluster.sh stop}
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "N must be a positive number" >&2; exit 2; }

mqtt_base=${IOT_MQTT_BASE:-1883}
http_base=${IOT_HTTP_BASE:-8080}
mqtts_base=${IOT_MQTTS_BASE:-8883}
https_base=${IOT_HTTPS_BASE:-8443}
allow_anonymous=${Iot__Auth__AllowAnonymous:-true}
admin_key=${Iot__Auth__BootstrapAdminKey:-local-cluster-admin-key}
silo_base=${IOT_SILO_BASE:-11111}
gateway_base=${IOT_GATEWAY_BASE:-30000}
connection=${ConnectionStrings__Iot:-$("$here/postgres.sh")}
cluster_id=${Orleans__ClusterId:-local-cluster}

if [[ -n "${IOT_SILO_DLL:-}" ]]; then
  dll=$IOT_SILO_DLL   # a silo built already (the README test runs the one it was built with)
else
  dotnet build "$root/Silo/Silo.csproj" -c Release -nologo -v q >"$run/build.log" 2>&1 \
    || { tail -n 20 "$run/build.log" >&2; echo "cluster.sh: the build failed (whole log: $run/build.log)" >&2; exit 1; }
  dll="$root/Silo/bin/Release/net10.0/OrleansIot.Silo.dll"
fi

echo "PostgreSQL: $connection"
echo "API key: $admin_key (Authorization: Bearer ...)"
for i in $(seq 1 "$n"); do
  mqtt=$((mqtt_base + 10 * (i - 1))); http=$((http_base + 10 * (i - 1)))
  silo=$((silo_base + i - 1)); gateway=$((gateway_base + i - 1))
  mqtts=$((mqtts_base + 10 * (i - 1))); https=$((https_base + 10 * (i - 1)))
  Iot__Storage=Postgres ConnectionStrings__Iot="$connection" Orleans__ClusterId="$cluster_id" \
  Iot__Mqtt__Port=$mqtt Iot__Http__Port=$http Iot__NodeName="node$i" \
  Iot__Mqtt__TlsPort=$mqtts Iot__Https__Port=$https \
  Iot__Auth__AllowAnonymous="$allow_anonymous" Iot__Auth__BootstrapAdminKey="$admin_key" \
  Orleans__Endpoints__SiloPort=$silo Orleans__Endpoints__GatewayPort=$gateway \
    nohup dotnet "$dll" >"$run/node-$i.log" 2>&1 &
  echo $! >"$run/node-$i.pid"
  echo "node$i: mqtt://127.0.0.1:$mqtt  mqtts://127.0.0.1:$mqtts  http://127.0.0.1:$http  https://127.0.0.1:$https  silo $silo  gateway $gateway  log $run/node-$i.log"
done

for i in $(seq 1 "$n"); do
  http=$((http_base + 10 * (i - 1)))
  for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$http/health" >/dev/null 2>&1 && break
    kill -0 "$(cat "$run/node-$i.pid")" 2>/dev/null || { echo "node$i exited; see $run/node-$i.log" >&2; exit 1; }
    sleep 0.1
  done
  curl -fs "http://127.0.0.1:$http/health" >/dev/null || { echo "node$i did not become ready; see $run/node-$i.log" >&2; exit 1; }
done
echo "cluster of $n node(s) ready"
