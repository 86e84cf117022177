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
# received and a rule's PostgreSQL sink stored (a rule `SELECT k FROM 'roll/RUN/#'` with a `postgres` action into a
# table of this run), the longest silence at the subscriber (how long the device was without its messages) and at the
# publisher (how long no publish was taken), and a shadow checked the whole time: a writer updates a thing's classic
# shadow over HTTP through the balancer one update at a time, and after each acknowledged update reads it back. Every
# acknowledged update must get a higher version than the one before, and no read may show an older version or state
# than an update acknowledged before it. Loopback only, bounded: the publisher stops when the event is over plus 10 s.
# Exits 1, naming what failed, if an acknowledged message was lost (at the subscriber or the sink), a shadow check
# failed, or the wills were not the killed node's. Ports: cluster.sh's (IOT_LB_MQTT, IOT_LB_HTTP, IOT_MQTT_BASE, ...);
# PostgreSQL: postgres.sh's (IOT_PG_PORT, IOT_PG_DIR). The suite runs a rolling restart this way (ResilienceRunTests).
#   bench/resilience-run.sh [rolling|postgres|kill]     (needs mosquitto-clients, haproxy, jq, PostgreSQL's server binaries)
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
lb_mqtt=${IOT_LB_MQTT:-1880} lb_http=${IOT_LB_HTTP:-8000} mqtt_base=${IOT_MQTT_BASE:-1883}
work=$(mktemp -d)
touch "$work/acknowledged.txt" "$work/acknowledged.log" "$work/received.log" "$work/shadow.txt"
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
for _ in $(seq 1 50); do curl -fs http://127.0.0.1:$lb_http/readyz >/dev/null && break; sleep 0.2; done
key=local-cluster-admin-key
api() { curl -s --max-time 10 -H "Authorization: Bearer $key" -H 'content-type: application/json' "$@"; }

# The rule's sink: a table of this run in the cluster's own database (the postgres action's default connection).
# shellcheck disable=SC1091
source "$IOT_RUN_DIR/cluster.env"
pg_port=$(sed -E 's/.*Port=([0-9]+).*/\1/' <<<"$connection")
pg_db=$(sed -E 's/.*Database=([^;]+).*/\1/' <<<"$connection")
sql() { psql -h 127.0.0.1 -p "$pg_port" -U postgres -d "$pg_db" -qtAc "$1"; }
sink=roll_sink_$run_id
sql "CREATE TABLE $sink (k bigint NOT NULL)"
api -f -o /dev/null -X POST "http://127.0.0.1:$lb_http/api/rules/roll_$run_id" \
  -d "{\"sql\": \"SELECT k FROM 'roll/$run_id/#'\", \"actions\": [{\"postgres\": {\"table\": \"$sink\"}}]}" \
  || { echo "could not create the rule" >&2; exit 1; }

# mosquitto_sub reconnects after a dropped connection, but exits when a CONNACK refuses it (a node answers "server
# unavailable" while the session's grain lived on a node not yet declared dead): it starts again, as a device's SDK
# retries with back-off.
(
  while [[ ! -f "$work/stop" ]]; do
    mosquitto_sub -h 127.0.0.1 -p "$lb_mqtt" -i "roll-subscriber-$run_id" -c -q 1 -t "roll/$run_id/#" -F '%U %p' >>"$work/received.log" 2>>"$work/sub.err" || true
    echo "$(date +%T.%N | cut -c1-12) subscriber refused; connecting again" >>"$work/sub.err"
    sleep 0.5
  done
) &
sub=$!
if [[ "$scenario" == kill ]]; then
  mosquitto_sub -h 127.0.0.1 -p "$lb_mqtt" -i will-watcher -c -q 1 -t 'wills/#' -v >"$work/wills.txt" 2>/dev/null &
  sub="$sub $!"
  for i in 1 2 3; do
    mosquitto_sub -h 127.0.0.1 -p $((mqtt_base + 10 * (i - 1))) -i "will-device-$i" -k 5 -t "cmd/will-device-$i" \
      --will-topic "wills/node$i" --will-payload "will of the device on node$i" --will-qos 1 >/dev/null 2>&1 &
    sub="$sub $!"
  done
fi
sleep 2   # the subscriber is subscribed, and every node has read the rule (nodes read new rules within a second)
(
  k=0
  while [[ ! -f "$work/stop" ]]; do
    k=$((k + 1))
    if mosquitto_pub -h 127.0.0.1 -p "$lb_mqtt" -i "roll-publisher" -q 1 -t "roll/$run_id/x" -m "{\"k\":$k}" 2>>"$work/pub.err"; then
      echo "$k $(date +%s.%N)" >>"$work/acknowledged.log"
      echo "$k" >>"$work/acknowledged.txt"
    else
      echo "$k" >>"$work/refused.txt"
    fi
    sleep 0.02
  done
) &
pub=$!
# The shadow's writer and reader: "N VERSION READ_VERSION READ_K" per acknowledged update (the read right after it;
# "- -" if the read failed).
shadow="http://127.0.0.1:$lb_http/things/roll-thing-$run_id/shadow"
(
  n=0
  while [[ ! -f "$work/stop" ]]; do
    n=$((n + 1))
    if answer=$(api -f -X POST "$shadow" -d "{\"state\":{\"reported\":{\"k\":$n}}}" 2>/dev/null) \
      && version=$(jq -er .version <<<"$answer" 2>/dev/null); then
      read="- -"
      if got=$(api -f "$shadow" 2>/dev/null); then read=$(jq -r '"\(.version) \(.state.reported.k)"' <<<"$got"); fi
      echo "$n $version $read" >>"$work/shadow.txt"
    else
      echo "$n" >>"$work/shadow-refused.txt"
    fi
    sleep 0.05
  done
) &
pub="$pub $!"
sleep 5
start=$(date +%s)
case "$scenario" in
  rolling)
    "$root/deploy/local/rolling-restart.sh" 5 | while read -r line; do echo "$(date +%T) $line"; done
    echo "rolling restart took $(( $(date +%s) - start )) s"
    ;;
  postgres)
    IOT_PG_PORT=${IOT_PG_PORT:-5433} "$root/deploy/local/postgres.sh" restart
    echo "$(date +%T) PostgreSQL restarted in $(( $(date +%s) - start )) s"
    sleep 10
    ;;
  upgrade)
    IOT_SILO_DLL=$new "$root/deploy/local/rolling-restart.sh" 5 | while read -r line; do echo "$(date +%T) $line"; done
    echo "upgrade of every node took $(( $(date +%s) - start )) s"
    ;;
  kill)
    # The node the subscriber's session lives on, from the session API (hostNodeId is "nodeI/incarnation").
    host=$(curl -fs -H "Authorization: Bearer local-cluster-admin-key" http://127.0.0.1:$lb_http/api/sessions/roll-subscriber-$run_id \
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
# shellcheck disable=SC2086
wait $pub || true
sleep 5   # the last messages reach the subscriber
pkill -f "mosquitto_sub -h 127.0.0.1 -p $lb_mqtt -i roll-subscriber-$run_id" 2>/dev/null || true
# shellcheck disable=SC2086
kill $sub 2>/dev/null || true
# shellcheck disable=SC2086
wait $sub 2>/dev/null || true

sed -E 's/.*"k":([0-9]+).*/\1/' "$work/received.log" >"$work/received.txt"
# The sink: at least once, so wait until its count stops growing (a rule retries a failed write).
stored_before=-1
for _ in $(seq 1 30); do
  stored=$(sql "SELECT count(*) FROM $sink")
  [[ "$stored" == "$stored_before" ]] && break
  stored_before=$stored
  sleep 1
done
sql "SELECT k FROM $sink" >"$work/stored.txt"
acknowledged=$(sort -u "$work/acknowledged.txt" | wc -l)
refused=$( [[ -f "$work/refused.txt" ]] && wc -l <"$work/refused.txt" || echo 0)
received=$(sort -u "$work/received.txt" | wc -l)
duplicates=$(( $(wc -l <"$work/received.txt") - received ))
lost=$(comm -23 <(sort -u "$work/acknowledged.txt") <(sort -u "$work/received.txt") | wc -l)
echo "publishes acknowledged: $acknowledged, refused or failed (not acknowledged, so not promised): $refused"
echo "received by the persistent subscriber: $received unique, $duplicates duplicates"
echo "acknowledged and never received: $lost"
stored=$(sort -u "$work/stored.txt" | wc -l)
sink_lost=$(comm -23 <(sort -u "$work/acknowledged.txt") <(sort -u "$work/stored.txt") | wc -l)
echo "stored by the rule's sink: $stored unique, $(( $(wc -l <"$work/stored.txt") - stored )) duplicates; acknowledged and never stored: $sink_lost"
# Longest silences (s): between two receipts at the subscriber, between two acknowledged publishes.
gap() { sort -n | awk 'NR > 1 && $1 - t > g { g = $1 - t } { t = $1 } END { printf "%.1f", g }'; }
echo "longest silence: at the subscriber $(cut -d' ' -f1 "$work/received.log" | gap) s, between acknowledged publishes $(cut -d' ' -f2 "$work/acknowledged.log" | gap) s"
# The shadow: versions of acknowledged updates strictly increasing; each read at least as new as the update before it.
accepted=$(wc -l <"$work/shadow.txt")
shadow_refused=$( [[ -f "$work/shadow-refused.txt" ]] && wc -l <"$work/shadow-refused.txt" || echo 0)
not_increasing=$(awk 'NR > 1 && $2 <= v { bad++ } { v = $2 } END { print bad + 0 }' "$work/shadow.txt")
stale=$(awk '$3 != "-" && ($3 < $2 || $4 < $1) { bad++ } END { print bad + 0 }' "$work/shadow.txt")
final=$(api "$shadow" | jq -r '"\(.version) \(.state.reported.k)"')
last=$(tail -n 1 "$work/shadow.txt" | cut -d' ' -f1,2)
echo "shadow: $accepted updates acknowledged (versions up to ${last#* }), $shadow_refused refused or failed; versions not increasing: $not_increasing; reads older than an acknowledged update: $stale; final version and k: $final (last acknowledged: k ${last% *}, version ${last#* })"
if [[ $lost -gt 0 ]]; then
  # As ranges of publish numbers (one publish every ~40 ms, so a range's length is how long the loss lasted).
  echo "lost: $(comm -23 <(sort -u "$work/acknowledged.txt") <(sort -u "$work/received.txt") | sort -n \
    | awk 'NR == 1 { a = b = $1; next } $1 == b + 1 { b = $1; next } { printf "%s ", (a == b ? a : a "-" b); a = b = $1 } END { print (a == b ? a : a "-" b) }')"
fi
failed=()
((acknowledged > 0)) || failed+=("no publish was acknowledged")
((lost == 0)) || failed+=("$lost acknowledged messages never received")
((sink_lost == 0)) || failed+=("$sink_lost acknowledged messages never stored by the rule")
((not_increasing == 0 && stale == 0)) || failed+=("shadow versions went back")
((accepted > 0)) || failed+=("no shadow update was acknowledged")
[[ -n "$last" && "${final% *}" -ge "${last#* }" && "${final#* }" -ge "${last% *}" ]] || failed+=("the final shadow is older than the last acknowledged update")
if [[ "$scenario" == kill ]]; then
  wills=$(sort -u "$work/wills.txt" | cut -d' ' -f1 | tr '\n' ' ')
  echo "wills published: $wills(expected: wills/node$host only)"
  [[ "$wills" == "wills/node$host " ]] || failed+=("wills published: $wills")
fi
echo "(work directory: $work)"
trap - EXIT
cleanup
if ((${#failed[@]})); then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "OK: nothing acknowledged was lost"
