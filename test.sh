#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need and is missing (Debian packages, and the npm
# packages of Tests/Clients), runs them, and ends with the names of the failed tests (if any) above one line
# "N passed, M failed". Exit code 0 only when every test passed.
#
#   ./test.sh                                  everything
#   ./test.sh --filter Category=Unit           any `dotnet test` arguments are passed on
#   ./test.sh --clock +365d                    the same suite with the wall clock a year ahead (libfaketime), to
#                                              catch tests and code that depend on today's date
#   ./test.sh --loaded 2 --filter Sessions     the tests beside N busy loops (one per core here): delivery and
#                                              hand-over races show under CPU pressure that an idle machine hides
#
# With the prerequisites installed, `dotnet test OrleansIot.sln` runs the same tests.
set -uo pipefail
cd "$(dirname "$0")"

clock=""
loaded=0
args=()
while (($#)); do
  case "$1" in
    --clock) clock="${2:?--clock needs an offset such as +365d}"; shift 2 ;;
    --loaded) loaded="${2:?--loaded needs a number of busy loops}"; shift 2
              [[ $loaded =~ ^[0-9]+$ ]] || { echo "--loaded needs a number of busy loops, not '$loaded'" >&2; exit 2; } ;;
    *) args+=("$1"); shift ;;
  esac
done

fail() { echo "$*" >&2; echo "0 passed, 1 failed"; exit 1; }

# --- prerequisites: Debian packages the tests use -----------------------------------------------------------------
need=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)   # the PostgreSQL tests start their own server
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)      # interoperability with Mosquitto's clients
command -v openssl >/dev/null 2>&1 || need+=(openssl)                      # ALPN checks, and the README's certificates
command -v jq >/dev/null 2>&1 || need+=(jq)                                # the README's commands
command -v node >/dev/null 2>&1 || need+=(nodejs)                          # the AWS IoT Device SDK v2 and other JS clients
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v chromium >/dev/null 2>&1 || need+=(chromium)                    # the web console's browser tests (headless)
command -v aws >/dev/null 2>&1 || need+=(awscli)                          # a backend signing with SigV4 (the AWS CLI)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)                      # checks deploy/compose/haproxy.cfg (haproxy -c)
[[ -n $clock && ! -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ]] && need+=(faketime)
if ((${#need[@]})); then
  if [[ $(id -u) -eq 0 ]]; then sudo=(); elif command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
    fail "missing: ${need[*]}; install them (Debian: apt-get install -y ${need[*]}) or run as root"
  fi
  echo "installing: ${need[*]}"
  "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null \
    || fail "could not install ${need[*]}"
fi
command -v dotnet >/dev/null 2>&1 || fail "the .NET SDK is missing (dotnet on PATH); see global.json for the version"

# --- prerequisites: the third-party JavaScript clients the tests drive (Tests/Clients, locked by package-lock.json) ---
clients=Tests/Clients
if [[ ! -d $clients/node_modules || $clients/package-lock.json -nt $clients/node_modules ]]; then
  echo "installing the JavaScript test clients (npm ci in $clients)"
  (cd "$clients" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in $clients failed"
  touch "$clients/node_modules"
fi

# --- the suite ------------------------------------------------------------------------------------------------------
env=()
if [[ -n $clock ]]; then
  # Only the test host runs on the shifted clock (dotnet test -e): the build and the runner keep real time.
  env=(-e LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 -e "FAKETIME=$clock")
  echo "test host clock: $clock"
fi

results=$(mktemp -d)
busy=()
trap 'kill "${busy[@]}" 2>/dev/null; rm -rf "$results"' EXIT
if ((loaded > 0)); then
  # Started after the build would be better, but dotnet test builds first; the loops only make that slower.
  for _ in $(seq 1 "$loaded"); do (while :; do :; done) & busy+=($!); done
  echo "beside $loaded busy loops (pids ${busy[*]})"
fi
dotnet test OrleansIot.sln --logger "trx;LogFileName=results.trx" --results-directory "$results" "${env[@]}" "${args[@]}"
rc=$?
if ((${#busy[@]})); then kill "${busy[@]}" 2>/dev/null; busy=(); fi

# --- the verdict, readable at a glance --------------------------------------------------------------------------------
trx="$results/results.trx"
if [[ -f $trx ]]; then
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  count() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
  passed=$(count passed); failed=$(count failed); errors=$(count error); timeouts=$(count timeout)
  failed=$(( ${failed:-0} + ${errors:-0} + ${timeouts:-0} ))
  passed=${passed:-0}
  # The names of the tests that did not pass, one a line.
  failures=$(grep -o '<UnitTestResult [^>]*outcome="\(Failed\|Error\|Timeout\)"[^>]*>' "$trx" \
    | sed -n 's/.*testName="\([^"]*\)".*/\1/p' | sed 's/&quot;/"/g; s/&amp;/\&/g; s/&lt;/</g; s/&gt;/>/g')
else
  passed=0; failed=1; failures="(no results: the build or the test host failed before any test ran; see above)"
fi

if (( rc != 0 && failed == 0 )); then failed=1; failures="(dotnet test exited with $rc; see above)"; fi
if (( passed == 0 && failed == 0 )); then failed=1; failures="(no test ran)"; fi
if (( failed > 0 )); then
  echo
  echo "Failed tests:"
  sed 's/^/  /' <<<"$failures"
fi
echo "$passed passed, $failed failed"
(( rc == 0 && failed == 0 ))
