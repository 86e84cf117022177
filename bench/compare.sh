#!/usr/bin/env bash
# Side-by-side: OrleansIot (embedded default, Release) and Mosquitto (Debian package) on this machine, same load
# generator, same scenarios, one session. Loopback only; every run is bounded by --duration (or --max-messages).
# Each server is pinned to one core and the load generator to another (taskset), so a ratio measures the servers.
#   bench/compare.sh [rows-file]       prints markdown table rows (and appends them to rows-file if given)
# Environment: IOT_BENCH_DURATION (10), IOT_BENCH_WARMUP (3), IOT_BENCH_REPEAT (1), IOT_BENCH_WARM (60: seconds of
# load each server gets first; .NET's tiered JIT needs about that on one core before the figures settle),
# IOT_BENCH_SERVER_CPU (1), IOT_BENCH_LOAD_CPU (0).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/dev/null}
duration=${IOT_BENCH_DURATION:-10}
warmup=${IOT_BENCH_WARMUP:-3}
repeat=${IOT_BENCH_REPEAT:-1}
warm=${IOT_BENCH_WARM:-60}
server_cpu=${IOT_BENCH_SERVER_CPU:-1}
load_cpu=${IOT_BENCH_LOAD_CPU:-0}
server_pin=() load_pin=()
if command -v taskset >/dev/null && [[ $(nproc --all) -gt 1 ]]; then
  server_pin=(taskset -c "$server_cpu") load_pin=(taskset -c "$load_cpu")
fi
iot_port=${IOT_BENCH_IOT_PORT:-21883}
iot_http=${IOT_BENCH_IOT_HTTP:-28080}
mosq_port=${IOT_BENCH_MOSQ_PORT:-21884}
work=$(mktemp -d)

command -v mosquitto >/dev/null || { echo "mosquitto not installed (apt-get install -y mosquitto)" >&2; exit 1; }
dotnet build "$root/Silo/Silo.csproj" -c Release -nologo -v q >/dev/null
dotnet build "$root/bench/OrleansIot.Bench/OrleansIot.Bench.csproj" -c Release -nologo -v q >/dev/null
bench=("${load_pin[@]}" dotnet "$root/bench/OrleansIot.Bench/bin/Release/net10.0/OrleansIot.Bench.dll" pubsub)

cleanup() {
  [[ -n "${iot_pid:-}" ]] && kill -TERM "$iot_pid" 2>/dev/null || true
  [[ -n "${mosq_pid:-}" ]] && kill -TERM "$mosq_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 10000\n' "$mosq_port" >"$work/mosquitto.conf"
"${server_pin[@]}" mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
mosq_pid=$!
Iot__Mqtt__Port=$iot_port Iot__Http__Port=$iot_http Iot__BindAddress=127.0.0.1 \
Iot__Limits__MaxPublishesPerSecond=0 Iot__Limits__MaxBytesPerSecond=0 Iot__Tls__Enabled=false \
Orleans__Endpoints__SiloPort=${IOT_BENCH_SILO_PORT:-21111} Orleans__Endpoints__GatewayPort=${IOT_BENCH_GATEWAY_PORT:-23000} \
Logging__LogLevel__Default=Warning DOTNET_GCgen0size=${DOTNET_GCgen0size:-0x4000000} \
  "${server_pin[@]}" dotnet "$root/Silo/bin/Release/net10.0/OrleansIot.Silo.dll" >"$work/orleansiot.log" 2>&1 &
iot_pid=$!
for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$iot_http/health" >/dev/null 2>&1 && break; sleep 0.1; done

run() { # label port args...
  local label=$1 port=$2; shift 2
  "${bench[@]}" --port "$port" --duration "$duration" --warmup "$warmup" --label "$label" "$@" 2>"$work/progress.log" | tail -n 1 | tee -a "$out"
}

# Warm both servers (JIT tiering, connection paths) with unmeasured load.
"${bench[@]}" --port "$iot_port" --shape p2p --publishers 100 --qos 1 --duration "$warm" --warmup 1 >/dev/null 2>&1
"${bench[@]}" --port "$mosq_port" --shape p2p --publishers 100 --qos 1 --duration 5 --warmup 1 >/dev/null 2>&1

scenarios=(
  "burst-10x5000-qos1|--shape fan-in --publishers 10 --subscribers 1 --qos 1 --inflight 20 --max-messages 5000 --mqtt 3 --subscriber raw --warmup 0"
  "p2p-qos1|--shape p2p --publishers 100 --qos 1"
  "p2p-qos0|--shape p2p --publishers 100 --qos 0 --rate 200"
  "fan-in-qos1|--shape fan-in --publishers 1000 --subscribers 1 --qos 1 --rate 10 --subscriber raw"
  "fan-in-qos0|--shape fan-in --publishers 1000 --subscribers 1 --qos 0 --rate 10 --subscriber raw"
  "fan-out-qos1|--shape fan-out --publishers 1 --subscribers 1000 --qos 1 --rate 10"
  "fan-out-qos0|--shape fan-out --publishers 1 --subscribers 1000 --qos 0 --rate 10"
)
echo "| server / scenario | shape | pub x sub | QoS | sent msg/s | delivered msg/s | loss | p50 ms | p95 ms | p99 ms | server peak RSS MiB | delivered msg/s first to last | server CPU us/msg |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for r in $(seq 1 "$repeat"); do
  for s in "${scenarios[@]}"; do
    name=${s%%|*}; args=${s#*|}
    # shellcheck disable=SC2086
    run "OrleansIot $name" "$iot_port" $args
    # shellcheck disable=SC2086
    run "Mosquitto $name" "$mosq_port" $args
  done
done
