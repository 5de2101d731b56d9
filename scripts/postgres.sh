#!/usr/bin/env bash
# Starts or stops a PostgreSQL 15 server of the project's own.
#   scripts/postgres.sh start DIR PORT   -> prints the server's URL (database jobflow)
#   scripts/postgres.sh stop DIR
# The data directory lives under DIR (created on first start, kept after).
# The server runs as the 'postgres' user when started by root (it refuses
# to run as root), listens on 127.0.0.1 only, and has wal_level=logical for
# the CDC source. Databases jobflow, dialogs and counters are created.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cmd=${1:?usage: postgres.sh start|stop DIR [PORT]}
dir=$(mkdir -p "${2:?DIR}" && cd "$2" && pwd)
port=${3:-55432}
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
data="$dir/data"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  [ -x "$bin/initdb" ] || { echo "postgres.sh: no PostgreSQL 15 server in $bin (apt-get install postgresql-15)" >&2; exit 1; }
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  # A start whose port is held a moment is retried (lib.sh: port_was_held).
  for try in $(seq 1 15); do
    as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 && break
    seen=$(log_size "$dir/postgres.log")
    as_pg "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 -o "-c listen_addresses=127.0.0.1 -p $port \
      -c unix_socket_directories=$dir -c wal_level=logical -c max_wal_senders=10 -c max_replication_slots=10 \
      -c max_connections=300 -c shared_buffers=256MB -c fsync=${PG_FSYNC:-on}" start >/dev/null && break
    if [ "$try" -lt 15 ] && port_was_held "$dir/postgres.log" "$seen"; then
      echo "postgres.sh: port $port is held; retrying" >&2; sleep 2; continue
    fi
    tail -n 20 "$dir/postgres.log" >&2; exit 1
  done
  for db in jobflow dialogs counters; do
    as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qtAc \
      "SELECT 1 FROM pg_database WHERE datname='$db'" 2>/dev/null | grep -q 1 \
      || as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE $db" >/dev/null
  done
  echo "postgres://postgres@127.0.0.1:$port/jobflow?sslmode=disable"
  ;;
stop)
  if [ -f "$data/postmaster.pid" ]; then as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null || true; fi
  ;;
*) echo "usage: postgres.sh start|stop DIR [PORT]" >&2; exit 2 ;;
esac
