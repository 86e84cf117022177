#!/usr/bin/env bash
# A resilience run (issue 19): a 3-node cluster on PostgreSQL behind haproxy (deploy/local/cluster.sh), a persistent
# QoS 1 subscriber (mosquitto_sub, clean session off) and a QoS 1 publisher (one mosquitto_pub per message), both
# through the balancer, while deploy/local/rolling-restart.sh restarts every node in turn. Prints how many publishes
# were acknowledged (PUBACK: mosquitto_pub exit 0) and how many of those the subscriber received. Loopback only,
# bounded: the publisher stops when the restart is over plus 10 s.
#   bench/rolling-restart-run.sh          (needs mosquitto-clients, haproxy, PostgreSQL's server binaries)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
export IOT_RUN_DIR=$work/run
cleanup() {
  kill "${sub:-}" "${pub:-}" 2>/dev/null || true
  "$root/deploy/local/cluster.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$root/deploy/local/cluster.sh" 3 >"$work/cluster.log"
grep -E "balancer|ready" "$work/cluster.log"
for _ in $(seq 1 50); do curl -fs http://127.0.0.1:8000/readyz >/dev/null && break; sleep 0.2; done

mosquitto_sub -h 127.0.0.1 -p 1880 -i roll-subscriber -c -q 1 -t 'roll/#' >"$work/received.txt" 2>"$work/sub.err" &
sub=$!
sleep 2
(
  k=0
  while [[ ! -f "$work/stop" ]]; do
    k=$((k + 1))
    if mosquitto_pub -h 127.0.0.1 -p 1880 -i "roll-publisher" -q 1 -t roll/x -m "$k" 2>>"$work/pub.err"; then
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
"$root/deploy/local/rolling-restart.sh" 5 | while read -r line; do echo "$(date +%T) $line"; done
echo "rolling restart took $(( $(date +%s) - start )) s"
sleep 10
touch "$work/stop"
wait "$pub" || true
sleep 5   # the last messages reach the subscriber
kill "$sub" 2>/dev/null || true
wait "$sub" 2>/dev/null || true

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
echo "(work directory: $work)"
trap - EXIT
cleanup
