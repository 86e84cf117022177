#!/usr/bin/env bash
# A reconnect storm (issue 20, item 3): one Release node (embedded default) pinned to core 1, N idle devices (the
# bench's idle command, MQTT 3.1.1 clean sessions, each subscribed to its own command topic) on core 0; the node is
# restarted (SIGTERM, started again) and every device reconnects and subscribes again as an SDK does (a random pause
# of up to JITTER seconds, then exponential back-off while refused). Prints the time until every device was back, the
# refused connects by reason, the node's restart time and its RSS and threads after the storm. Loopback only, bounded
# (the bench gives up after 180 s). Extra node settings pass through the environment; STORM_CONNECT_LIMIT=500 starts
# the restarted node with that connect-rate limit (AWS's per-account 500/s): the fleet connects unthrottled first,
# and the storm meets the limit.
#   bench/storm.sh [devices=19000] [jitter seconds=10]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
devices=${1:-19000}
jitter=${2:-10}
work=$(mktemp -d)
export Iot__PortOffset=${Iot__PortOffset:-300} Iot__Auth__AllowAnonymous=true
mqtt=$((1883 + Iot__PortOffset)) http=$((8080 + Iot__PortOffset))
dotnet build "$root/Silo/Silo.csproj" -c Release -nologo -v q >/dev/null
dotnet build "$root/bench/OrleansIot.Bench" -c Release -nologo -v q >/dev/null
node=$root/Silo/bin/Release/net10.0/OrleansIot.Silo.dll
start_node() {
  if [[ -n "${1:-}" ]]; then
    Iot__Limits__MaxConnectsPerSecond=$1 DOTNET_GCgen0size=${DOTNET_GCgen0size:-0x4000000} taskset -c 1 dotnet "$node" >>"$work/node.log" 2>&1 &
  else
    DOTNET_GCgen0size=${DOTNET_GCgen0size:-0x4000000} taskset -c 1 dotnet "$node" >>"$work/node.log" 2>&1 &
  fi
  echo $! >"$work/node.pid"
  for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$http/readyz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "the node did not become ready; see $work/node.log" >&2; exit 1
}
cleanup() {
  kill "${bench:-}" 2>/dev/null || true
  local pid; pid=$(cat "$work/node.pid" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
trap cleanup EXIT
start_node
taskset -c 0 dotnet "$root/bench/OrleansIot.Bench/bin/Release/net10.0/OrleansIot.Bench.dll" idle --port "$mqtt" \
  --connections "$devices" --subscribe 1 --hold 5 --storm 180 --jitter "$jitter" >"$work/bench.out" 2>"$work/bench.err" &
bench=$!
until grep -q "waiting up to" "$work/bench.err" 2>/dev/null; do
  kill -0 "$bench" 2>/dev/null || { cat "$work/bench.err" "$work/bench.out" >&2; exit 1; }
  sleep 0.5
done

pid=$(cat "$work/node.pid")
started=$(date +%s.%N)
kill -TERM "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
stopped=$(date +%s.%N)
start_node "${STORM_CONNECT_LIMIT:-}"
echo "node restarted: stopped in $(awk "BEGIN { printf \"%.1f\", $stopped - $started }") s, ready again $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $stopped }") s later"
wait "$bench" || true
grep -E "^storm:|connected in" "$work/bench.out"
pid=$(cat "$work/node.pid")
echo "node after the storm: RSS $(awk '/VmRSS/ { printf "%d", $2 / 1024 }' /proc/"$pid"/status) MiB, peak $(awk '/VmHWM/ { printf "%d", $2 / 1024 }' /proc/"$pid"/status) MiB, $(ls /proc/"$pid"/task | wc -l) threads"
echo "(work directory: $work)"
