#!/usr/bin/env bash
# A soak (issue 19): one Release node (embedded default) pinned to core 1, the bench's p2p QoS 1 load pinned to core 0
# at a fixed rate (default 5,800 msg/s: half the 11.6k msg/s this machine's p2p maximum measured), for a bounded time,
# printing one Markdown row per interval: rates, delivery latency, the node's RSS, GC heap, GC pauses.
#   bench/soak.sh [seconds=1800] [rate per publisher=58] [publishers=100] [interval seconds=60]
# Loopback only. The node's log goes to $TMPDIR; the table to stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-1800} rate=${2:-58} publishers=${3:-100} every=${4:-60}
key=soak-key-0123456789
log=$(mktemp)
dotnet build "$root/Silo/Silo.csproj" -c Release -nologo -v q >/dev/null
dotnet build "$root/bench/OrleansIot.Bench/OrleansIot.Bench.csproj" -c Release -nologo -v q >/dev/null
Iot__PortOffset=200 Iot__Auth__BootstrapAdminKey=$key DOTNET_GCgen0size=${DOTNET_GCgen0size:-0x4000000} \
  taskset -c 1 dotnet "$root/Silo/bin/Release/net10.0/OrleansIot.Silo.dll" >"$log" 2>&1 &
node=$!
trap 'kill $node 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -fs http://127.0.0.1:8280/readyz >/dev/null && break; sleep 0.5; done
echo "node pid $node, log $log; $publishers publishers x $rate msg/s for $seconds s, a row every $every s ($(date -u +%FT%TZ), $(nproc) cores)" >&2
taskset -c 0 dotnet "$root/bench/OrleansIot.Bench/bin/Release/net10.0/OrleansIot.Bench.dll" pubsub \
  --port 2083 --server-pid "$node" --shape p2p --publishers "$publishers" --qos 1 --rate "$rate" \
  --warmup 0 --duration "$seconds" --report-every "$every" \
  --metrics http://127.0.0.1:8280/metrics --metrics-key "$key" --label soak
