#!/usr/bin/env bash
# A resilience run (issue 19): a 3-node cluster on PostgreSQL behind haproxy (deploy/local/cluster.sh), a persistent
# QoS 1 subscriber (mosquitto_sub, clean session off) and a QoS 1 publisher (one mosquitto_pub per message), both
# through the balancer, while something goes wrong:
#   rolling   deploy/local/rolling-restart.sh restarts every node in turn (SIGTERM, start, ready, 5 s, next)
#   postgres  PostgreSQL restarts (fast shutdown, deploy/local/postgres.sh restart)
#   kill      kill -9 of the node hosting the subscriber's session, started again 10 s later; a device with a will
#             on each node (connected to it directly), and a watcher of the wills through the balancer: the killed
#             node's device's will must be published (by the node that adopts its sessions), the others' not
#   upgrade OLD.dll   a cluster of an earlier build (its OrleansIot.Silo.dll, e.g. built from the previous release in a
#             git worktree) on a fresh database that build creates, upgraded node by node to this one (a rolling
#             restart onto the new build): for a while the cluster runs both versions
# Prints how many publishes were acknowledged (PUBACK: mosquitto_pub exit 0) and how many of those the subscriber
# received. Loopback only, bounded: the publisher stops when the event is over plus 10 s.
#   bench/resilience-run.sh [rolling|postgres|kill]     (needs mosquitto-clients, haproxy, PostgreSQL's server binaries)
set -euo pipefail
scenario=${1:-rolling}
[[ "$scenario" =~ ^(rolling|postgres|kill|upgrade)$ ]] || { echo "usage: $0 [rolling|postgres|kill|upgrade OLD.dll]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
run_id=$(date +%s)   # the subscriber's session and the topic are this run's own (a local cluster's database outlives runs)
if [[ "$scenario" == upgrade ]]; then
  old=${2:?usage: $0 upgrade OLD/Silo/bin/Release/net10.0/OrleansIot.Silo.dll}
  [[ -f "$old" ]] || { echo "no such build: $old" >&2; exit 2; }
  dotnet build "$root/Silo/Silo.csproj" -c Release -nologo -v q >/dev/null
  new=$root/Silo/bin/Release/net10.0/OrleansIot.Silo.dll
  export IOT_SILO_DLL=$old
  export IOT_PG_PORT=5434 ConnectionStrings__Iot   # a database the old build creates
  IOT_PG_DIR=$(mktemp -d -u /tmp/oiot-upgrade-pg-XXXX) && export IOT_PG_DIR
  ConnectionStrings__Iot=$("$root/deploy/local/postgres.sh")
fi
work=$(mktemp -d)
export IOT_RUN_DIR=$work/run
cleanup() {
  # shellcheck disable=SC2086
  kill ${sub:-} ${pub:-} 2>/dev/null || true
  "$root/deploy/local/cluster.sh" stop >/dev/null 2>&1 || true
  if [[ "$scenario" == upgrade ]]; then "$root/deploy/local/postgres.sh" stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

"$root/deploy/local/cluster.sh" 3 >"$work/cluster.log"
grep -E "balancer|ready" "$work/cluster.log"
for _ in $(seq 1 50); do curl -fs http://127.0.0.1:8000/readyz >/dev/null && break; sleep 0.2; done

# mosquitto_sub reconnects after a dropped connection, but exits when a CONNACK refuses it (a node answers "server
# unavailable" while the session's grain lived on a node not yet declared dead): it starts again, as a device's SDK
# retries with back-off.
(
  while [[ ! -f "$work/stop" ]]; do
    mosquitto_sub -h 127.0.0.1 -p 1880 -i "roll-subscriber-$run_id" -c -q 1 -t "roll/$run_id/#" >>"$work/received.txt" 2>>"$work/sub.err" || true
    echo "$(date +%T.%N | cut -c1-12) subscriber refused; connecting again" >>"$work/sub.err"
    sleep 0.5
  done
) &
sub=$!
if [[ "$scenario" == kill ]]; then
  mosquitto_sub -h 127.0.0.1 -p 1880 -i will-watcher -c -q 1 -t 'wills/#' -v >"$work/wills.txt" 2>/dev/null &
  sub="$sub $!"
  for i in 1 2 3; do
    mosquitto_sub -h 127.0.0.1 -p $((1883 + 10 * (i - 1))) -i "will-device-$i" -k 5 -t "cmd/will-device-$i" \
      --will-topic "wills/node$i" --will-payload "will of the device on node$i" --will-qos 1 >/dev/null 2>&1 &
    sub="$sub $!"
  done
fi
sleep 2
(
  k=0
  while [[ ! -f "$work/stop" ]]; do
    k=$((k + 1))
    if mosquitto_pub -h 127.0.0.1 -p 1880 -i "roll-publisher" -q 1 -t "roll/$run_id/x" -m "$k" 2>>"$work/pub.err"; then
      echo "$k $(date +%T.%N | cut -c1-12)" >>"$work/acknowledged.log"
      echo "$k" >>"$work/acknowledged.txt"
    else
      echo "$k" >>"$work/refused.txt"
    fi
    sleep 0.02
  done
) &
pub=$!
sleep 5
start=$(date +%s)
case "$scenario" in
  rolling)
    "$root/deploy/local/rolling-restart.sh" 5 | while read -r line; do echo "$(date +%T) $line"; done
    echo "rolling restart took $(( $(date +%s) - start )) s"
    ;;
  postgres)
    IOT_PG_PORT=5433 "$root/deploy/local/postgres.sh" restart
    echo "$(date +%T) PostgreSQL restarted in $(( $(date +%s) - start )) s"
    sleep 10
    ;;
  upgrade)
    IOT_SILO_DLL=$new "$root/deploy/local/rolling-restart.sh" 5 | while read -r line; do echo "$(date +%T) $line"; done
    echo "upgrade of every node took $(( $(date +%s) - start )) s"
    ;;
  kill)
    # The node the subscriber's session lives on, from the session API (hostNodeId is "nodeI/incarnation").
    host=$(curl -fs -H "Authorization: Bearer local-cluster-admin-key" http://127.0.0.1:8000/api/sessions/roll-subscriber-$run_id \
      | sed -E 's/.*"hostNodeId":"node([0-9]+)\/.*/\1/')
    [[ "$host" =~ ^[0-9]+$ ]] || { echo "could not find the subscriber's node" >&2; exit 1; }
    kill -KILL "$(cat "$IOT_RUN_DIR/node-$host.pid")"
    echo "$(date +%T) killed node$host (kill -9)"
    sleep 10
    "$root/deploy/local/cluster.sh" restart "$host" | while read -r line; do echo "$(date +%T) $line"; done
    ;;
esac
sleep 10
touch "$work/stop"
wait "$pub" || true
sleep 5   # the last messages reach the subscriber
pkill -f "mosquitto_sub -h 127.0.0.1 -p 1880 -i roll-subscriber-$run_id" 2>/dev/null || true
# shellcheck disable=SC2086
kill $sub 2>/dev/null || true
# shellcheck disable=SC2086
wait $sub 2>/dev/null || true

acknowledged=$(sort -u "$work/acknowledged.txt" | wc -l)
refused=$( [[ -f "$work/refused.txt" ]] && wc -l <"$work/refused.txt" || echo 0)
received=$(sort -u "$work/received.txt" | wc -l)
duplicates=$(( $(wc -l <"$work/received.txt") - received ))
lost=$(comm -23 <(sort -u "$work/acknowledged.txt") <(sort -u "$work/received.txt") | wc -l)
echo "publishes acknowledged: $acknowledged, refused or failed (not acknowledged, so not promised): $refused"
echo "received by the persistent subscriber: $received unique, $duplicates duplicates"
echo "acknowledged and never received: $lost"
if [[ $lost -gt 0 ]]; then
  # As ranges of publish numbers (one publish every ~40 ms, so a range's length is how long the loss lasted).
  echo "lost: $(comm -23 <(sort -u "$work/acknowledged.txt") <(sort -u "$work/received.txt") | sort -n \
    | awk 'NR == 1 { a = b = $1; next } $1 == b + 1 { b = $1; next } { printf "%s ", (a == b ? a : a "-" b); a = b = $1 } END { print (a == b ? a : a "-" b) }')"
fi
if [[ "$scenario" == kill ]]; then
  echo "wills published: $(sort -u "$work/wills.txt" | cut -d' ' -f1 | tr '\n' ' ')(expected: wills/node$host only)"
fi
echo "(work directory: $work)"
trap - EXIT
cleanup
