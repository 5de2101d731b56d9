#!/usr/bin/env bash
# Starts or stops a ClickHouse server of the project's own.
#   scripts/clickhouse.sh start DIR TCP_PORT HTTP_PORT  -> prints host:port of the native protocol
#   scripts/clickhouse.sh stop DIR
# Uses Debian's clickhouse-server (18.16), configured under DIR, listening
# on 127.0.0.1 only, with a passwordless 'default' user limited to loopback.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cmd=${1:?usage: clickhouse.sh start|stop DIR [TCP_PORT HTTP_PORT]}
dir=$(mkdir -p "${2:?DIR}" && cd "$2" && pwd)
tcp=${3:-59000}
http=${4:-58123}
server=${CLICKHOUSE_SERVER:-/usr/sbin/clickhouse-server}
pidfile="$dir/clickhouse.pid"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "$cmd" in
start)
  [ -x "$server" ] || { echo "clickhouse.sh: no $server (apt-get install clickhouse-server)" >&2; exit 1; }
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas"
  cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/server.log</log><errorlog>$dir/server.err.log</errorlog><size>100M</size><count>2</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$tcp</tcp_port>
  <http_port>$http</http_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
XML
  cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage><log_queries>0</log_queries></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
  # Merges are background work: the server's merge threads (BackgrProcPool,
  # a fixed pool made at start) run at a lower priority than its inserts and
  # queries and than the functions on the same cores (CLICKHOUSE_MERGE_NICE,
  # 0: as the server left them). On 2 cores the merges of many small parts
  # came in bursts that delayed the sinks' inserts (docs/BENCHMARKS.md).
  merges_nice() {
    local n=${CLICKHOUSE_MERGE_NICE:-10} t
    [ "$n" != 0 ] || return 0
    for t in /proc/"$(cat "$pidfile")"/task/*; do
      [ "$(cat "$t/comm" 2>/dev/null)" = BackgrProcPool ] && renice -n "$n" -p "${t##*/}" >/dev/null 2>&1 || true
    done
  }
  launch() {
    # Its own session: a Ctrl-C at the terminal reaches the engine, which
    # stops the server last, not the server directly.
    setsid nohup "$server" --config-file="$dir/config.xml" >"$dir/stdout.log" 2>&1 &
    echo $! >"$pidfile"
  }
  errlog="$dir/server.err.log"
  seen=$(log_size "$errlog") retries=0
  running || launch
  for _ in $(seq 1 300); do
    # Ours must be the server that answers: another one left on the same
    # ports would answer the ping while ours exits (a start that then
    # "succeeded" on someone else's server, its data and its settings).
    if running && curl -fsS "http://127.0.0.1:$http/ping" >/dev/null 2>&1 && listens "$(cat "$pidfile")" "$http"; then
      merges_nice; echo "127.0.0.1:$tcp"; exit 0
    fi
    if ! running; then
      # 18.16 does not reuse an address still in TIME-WAIT from a server
      # stopped a moment ago (back-to-back runs): wait it out (up to 60 s).
      # A server listening there is not going away: say whose it is.
      holder=$(listeners "$tcp" "$http" | head -1)
      if [ -n "$holder" ]; then
        echo "clickhouse.sh: port :$tcp or :$http is taken by another server (pid=$holder)" >&2; exit 1
      fi
      if [ "$((retries += 1))" -le 35 ] && port_was_held "$errlog" "$seen"; then
        echo "clickhouse.sh: port :$tcp or :$http still held after a previous server; retrying" >&2
        seen=$(log_size "$errlog"); sleep 2; launch; continue
      fi
      echo "clickhouse.sh: server exited" >&2; tail -n 20 "$errlog" "$dir/stdout.log" >&2 || true; exit 1
    fi
    sleep 0.2
  done
  echo "clickhouse.sh: no answer on :$http/ping after 60 s (see $dir/server.err.log)" >&2; exit 1
  ;;
stop)
  if running; then
    pid=$(cat "$pidfile"); kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  ;;
*) echo "usage: clickhouse.sh start|stop DIR [TCP_PORT HTTP_PORT]" >&2; exit 2 ;;
esac
