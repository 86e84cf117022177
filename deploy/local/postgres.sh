#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for development and prints its connection string (nothing else on stdout).
#   deploy/local/postgres.sh          start (idempotent) and print the connection string
#   deploy/local/postgres.sh stop     stop it and delete its data
#   deploy/local/postgres.sh restart  restart it (fast shutdown, data kept)
# Environment: IOT_PG_PORT (5433), IOT_PG_DIR (where its data lives: deploy/local/run/postgres, or, as root,
# /tmp/orleansiot-postgres-PORT, since the server then runs as the 'postgres' user, who cannot enter a private
# clone such as one made in a mktemp -d directory). Needs the PostgreSQL server binaries (Debian: apt-get install
# postgresql). Any failure: the reason on stderr and a non-zero exit, so `cs=$(deploy/local/postgres.sh)` stops a
# `set -e` script.
set -euo pipefail

fail() { echo "postgres.sh: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
port=${IOT_PG_PORT:-5433}
as_root=0; [[ $(id -u) -eq 0 ]] && as_root=1
if ((as_root)); then default_dir=/tmp/orleansiot-postgres-$port; else default_dir=$here/run/postgres; fi
dir=${IOT_PG_DIR:-$default_dir}
[[ "$dir" == /* ]] || dir=$PWD/$dir
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -z "$bin" ]] && command -v pg_ctl >/dev/null; then bin=$(dirname "$(command -v pg_ctl)"); fi
[[ -n "$bin" && -x "$bin/pg_ctl" ]] || fail "PostgreSQL server binaries not found (Debian: apt-get install -y postgresql)"

as_owner() {
  # From /: the postgres user may not enter the directory this was started in.
  if ((as_root)); then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

if [[ "${1:-start}" == "stop" ]]; then
  if [[ -f "$dir/data/postmaster.pid" ]]; then as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; fi
  rm -rf "$dir"
  echo "stopped" >&2
  exit 0
fi

if [[ "${1:-start}" == "restart" ]]; then
  # A fast restart of the running server (its data kept): what a database failover or a PostgreSQL upgrade looks like.
  [[ -f "$dir/data/postmaster.pid" ]] || fail "no server running in $dir"
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -l "$dir/server.log" \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on" restart >/dev/null
  echo "restarted" >&2
  exit 0
fi

if [[ ! -f "$dir/data/PG_VERSION" ]]; then
  mkdir -p "$dir" 2>/dev/null || fail "cannot create $dir; set IOT_PG_DIR to a directory you can write"
  if ((as_root)); then
    chown postgres "$dir"
    as_owner test -w "$dir" || fail "the postgres user cannot write $dir (a parent directory is private to root?); set IOT_PG_DIR to a directory it can reach"
  fi
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null 2>"$dir/initdb.log" \
    || fail "initdb failed: $(tail -n 3 "$dir/initdb.log" | tr '\n' ' ')"
fi
if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on" start >/dev/null \
    || fail "the server did not start (port $port in use? IOT_PG_PORT chooses another): $(tail -n 3 "$dir/server.log" 2>/dev/null | tr '\n' ' ')"
fi
exists=$(as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='iot'") \
  || fail "cannot reach the server on 127.0.0.1:$port"
[[ "$exists" == 1 ]] || as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE iot" >/dev/null \
  || fail "cannot create the database 'iot'"
echo "Host=127.0.0.1;Port=$port;Database=iot;Username=postgres"
