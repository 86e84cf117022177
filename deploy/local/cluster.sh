#!/usr/bin/env bash
# Runs an N-node OrleansIot cluster on this machine (loopback), all nodes on one PostgreSQL.
#   deploy/local/cluster.sh N       build once, start N silos, wait until each answers /health
#   deploy/local/cluster.sh stop    stop them (graceful, then forced after 30 s)
#   deploy/local/cluster.sh restart I       (with IOT_SILO_DLL: node I comes back as that build, an upgrade)
#                                   stop node I gracefully (SIGTERM: MQTT first, sessions handed over, then it leaves)
#                                   and start it again with the same settings; returns when it is ready (/readyz)
# Node i (1-based) listens on MQTT IOT_MQTT_BASE+10*(i-1) (1883), HTTP IOT_HTTP_BASE+10*(i-1) (8080),
# MQTT over mTLS IOT_MQTTS_BASE+10*(i-1) (8883), HTTPS IOT_HTTPS_BASE+10*(i-1) (8443),
# Orleans silo IOT_SILO_BASE+i-1 (11111) and gateway IOT_GATEWAY_BASE+i-1 (30000).
# A development cluster: devices may also connect without certificates on the plain port
# (Iot__Auth__AllowAnonymous, default true here); the API takes Iot__Auth__BootstrapAdminKey (default below).
# PostgreSQL: ConnectionStrings__Iot if set, else a throwaway server from deploy/local/postgres.sh.
# A TCP load balancer in front of them when haproxy is installed (IOT_BALANCER=none: without): MQTT IOT_LB_MQTT (1880),
# MQTTS IOT_LB_MQTTS (8880), HTTP IOT_LB_HTTP (8000), HTTPS IOT_LB_HTTPS (8440), spreading clients over the nodes as in
# production and taking a node out while its /readyz fails (stopping, or not yet a cluster member).
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
  if [[ -f "$run/balancer.pid" ]]; then kill "$(cat "$run/balancer.pid")" 2>/dev/null || true; rm -f "$run/balancer.pid"; fi
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

# Node i's process, with the settings saved at start ($run/cluster.env), so "restart" starts it the same way.
start_node() {
  local i=$1
  local mqtt=$((mqtt_base + 10 * (i - 1))) http=$((http_base + 10 * (i - 1)))
  local silo=$((silo_base + i - 1)) gateway=$((gateway_base + i - 1))
  local mqtts=$((mqtts_base + 10 * (i - 1))) https=$((https_base + 10 * (i - 1)))
  Iot__Storage=Postgres ConnectionStrings__Iot="$connection" Orleans__ClusterId="$cluster_id" \
  Iot__Mqtt__Port=$mqtt Iot__Http__Port=$http Iot__NodeName="node$i" \
  Iot__Mqtt__TlsPort=$mqtts Iot__Https__Port=$https \
  Iot__Auth__AllowAnonymous="$allow_anonymous" Iot__Auth__BootstrapAdminKey="$admin_key" \
  Orleans__Endpoints__SiloPort=$silo Orleans__Endpoints__GatewayPort=$gateway \
  Logging__Console__FormatterName=simple Logging__Console__FormatterOptions__TimestampFormat="HH:mm:ss.fff " \
  DOTNET_GCgen0size="${DOTNET_GCgen0size:-0x4000000}" \
    nohup dotnet "$dll" >>"$run/node-$i.log" 2>&1 &
  echo $! >"$run/node-$i.pid"
  echo "node$i: mqtt://127.0.0.1:$mqtt  mqtts://127.0.0.1:$mqtts  http://127.0.0.1:$http  https://127.0.0.1:$https  silo $silo  gateway $gateway  log $run/node-$i.log"
}

# Waits until node i answers the given path (/health: up; /readyz: a cluster member with MQTT accepting).
wait_node() {
  local i=$1 path=$2 http=$((http_base + 10 * ($1 - 1)))
  for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$http$path" >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$run/node-$i.pid")" 2>/dev/null || { echo "node$i exited; see $run/node-$i.log" >&2; exit 1; }
    sleep 0.1
  done
  curl -fs "http://127.0.0.1:$http$path" >/dev/null || { echo "node$i did not become ready; see $run/node-$i.log" >&2; exit 1; }
}

if [[ "${1:-}" == "restart" ]]; then
  i=${2:?usage: cluster.sh restart I}
  [[ -f "$run/cluster.env" && -f "$run/node-$i.pid" ]] || { echo "cluster.sh: no node $i running from $run" >&2; exit 1; }
  # shellcheck disable=SC1091
  source "$run/cluster.env"
  # An upgrade: the node comes back as another build (IOT_SILO_DLL; cluster.env keeps the one the cluster started with).
  if [[ -n "${IOT_SILO_DLL:-}" && "$IOT_SILO_DLL" != "$dll" ]]; then
    dll=$IOT_SILO_DLL
  fi
  pid=$(cat "$run/node-$i.pid")
  started=$(date +%s.%N)
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  stopped=$(date +%s.%N)
  start_node "$i" >/dev/null
  wait_node "$i" /readyz
  echo "node$i restarted: stopped in $(awk "BEGIN { printf \"%.1f\", $stopped - $started }") s, ready again $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $stopped }") s later"
  exit 0
fi

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
declare -p mqtt_base http_base mqtts_base https_base silo_base gateway_base allow_anonymous admin_key connection cluster_id dll > "$run/cluster.env"
for i in $(seq 1 "$n"); do
  : >"$run/node-$i.log"
  start_node "$i"
done

for i in $(seq 1 "$n"); do
  wait_node "$i" /health
done
if [[ "${IOT_BALANCER:-haproxy}" != none ]] && command -v haproxy >/dev/null; then
  lb_mqtt=${IOT_LB_MQTT:-1880} lb_mqtts=${IOT_LB_MQTTS:-8880} lb_http=${IOT_LB_HTTP:-8000} lb_https=${IOT_LB_HTTPS:-8440}
  {
    printf 'global\n    maxconn 8000\n    pidfile %s\n\n' "$run/balancer.pid"
    printf 'defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30m\n    timeout server 30m\n\n'
    for kind in mqtt mqtts http https; do
      case $kind in
        mqtt) front=$lb_mqtt base=$mqtt_base ;; mqtts) front=$lb_mqtts base=$mqtts_base ;;
        http) front=$lb_http base=$http_base ;; https) front=$lb_https base=$https_base ;;
      esac
      printf 'frontend %s\n    bind 127.0.0.1:%s\n    default_backend nodes_%s\n\n' "$kind" "$front" "$kind"
      printf 'backend nodes_%s\n    balance leastconn\n    option httpchk GET /readyz\n' "$kind"
      for i in $(seq 1 "$n"); do
        printf '    server node%s 127.0.0.1:%s check port %s inter 1s fall 2 rise 1\n' "$i" $((base + 10 * (i - 1))) $((http_base + 10 * (i - 1)))
      done
      printf '\n'
    done
  } >"$run/haproxy.cfg"
  haproxy -D -f "$run/haproxy.cfg" || { echo "cluster.sh: haproxy did not start ($run/haproxy.cfg)" >&2; exit 1; }
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$lb_http/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "balancer: mqtt://127.0.0.1:$lb_mqtt  mqtts://127.0.0.1:$lb_mqtts  http://127.0.0.1:$lb_http  https://127.0.0.1:$lb_https  (haproxy, $run/haproxy.cfg)"
fi
echo "cluster of $n node(s) ready"
