#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for development and prints its connection string.
#   deploy/local/postgres.sh          start (idempotent) and print the connection string
#   deploy/local/postgres.sh stop     stop it and delete its data
# Environment: IOT_PG_PORT (5433), IOT_PG_DIR (deploy/local/run/postgres). Needs the PostgreSQL server binaries
# (Debian: apt-get install postgresql). As root the server runs as the 'postgres' user.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
port=${IOT_PG_PORT:-5433}
dir=${IOT_PG_DIR:-$here/run/postgres}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -z "$bin" ]] && command -v pg_ctl >/dev/null; then bin=$(dirname "$(command -v pg_ctl)"); fi
if [[ -z "$bin" || ! -x "$bin/pg_ctl" ]]; then
  echo "PostgreSQL server binaries not found (Debian: apt-get install -y postgresql)" >&2
  exit 1
fi

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [[ "${1:-start}" == "stop" ]]; then
  if [[ -f "$dir/data/postmaster.pid" ]]; then as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; fi
  rm -rf "$dir"
  echo "stopped"
  exit 0
fi

if [[ ! -f "$dir/data/PG_VERSION" ]]; then
  mkdir -p "$dir"
  if [[ $(id -u) -eq 0 ]]; then chown postgres "$dir"; fi
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
fi
if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on" start >/dev/null
fi
as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='iot'" | grep -q 1 \
  || as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE iot" >/dev/null
echo "Host=127.0.0.1;Port=$port;Database=iot;Username=postgres"
