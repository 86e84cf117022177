#!/usr/bin/env bash
# What a subscription filter costs the other nodes (docs/scaling.md, "Route tables"): two nodes in one cluster
# (embedded mode, node B joins node A), N distinct filters subscribed on A by a few mosquitto_sub clients (10,000
# filters each, one SUBSCRIBE per client), then the RSS of both nodes before and after, from /proc.
#   bench/route-memory.sh [filters=100000]      (needs mosquitto-clients; loopback only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
filters=${1:-100000}
per=10000
dll=$root/Silo/bin/Release/net10.0/OrleansIot.Silo.dll
dotnet build "$root/Silo/Silo.csproj" -c Release -nologo -v q >/dev/null
work=$(mktemp -d)
limits=(Iot__Limits__MaxFiltersPerSubscribe=65535 Iot__Limits__MaxSubscriptionsPerConnection=1000000 Iot__Routing__RefreshInterval=00:00:01)
env "${limits[@]}" DOTNET_GCgen0size=${DOTNET_GCgen0size:-0x4000000} Iot__PortOffset=300 dotnet "$dll" >"$work/a.log" 2>&1 &
a=$!
trap 'kill $a ${b:-} ${subs[*]:-} 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -fs http://127.0.0.1:8380/readyz >/dev/null && break; sleep 0.5; done
env "${limits[@]}" DOTNET_GCgen0size=${DOTNET_GCgen0size:-0x4000000} Iot__PortOffset=310 Orleans__PrimarySiloEndpoint=127.0.0.1:11411 dotnet "$dll" >"$work/b.log" 2>&1 &
b=$!
for _ in $(seq 1 120); do curl -fs http://127.0.0.1:8390/readyz >/dev/null && break; sleep 0.5; done
sleep 10
rss() { awk '/VmRSS/ { print int($2 / 1024) }' "/proc/$1/status"; }
a0=$(rss $a) b0=$(rss $b)
subs=()
for ((c = 0; c * per < filters; c++)); do
  args=()
  for ((i = c * per; i < (c + 1) * per && i < filters; i++)); do args+=(-t "cmd/device-$i"); done
  mosquitto_sub -h 127.0.0.1 -p 2183 -i "routes-$c" -q 1 "${args[@]}" >/dev/null 2>"$work/sub-$c.err" &
  subs+=($!)
done
sleep 20   # the subscriptions, and their broadcast to node B
a1=$(rss $a) b1=$(rss $b)
echo "filters $filters on node A: node A RSS $a0 -> $a1 MiB ($(( (a1 - a0) * 1048576 / filters )) B per filter, its own subscriptions)"
echo "node B (routes only): RSS $b0 -> $b1 MiB ($(( (b1 - b0) * 1048576 / filters )) B per filter)"
grep -h "refused\|Error" "$work"/sub-*.err | head -3 || true
