#!/usr/bin/env bash
# Starts the test servers (PostgreSQL, ClickHouse) under .jobflow/test and
# writes .jobflow/test/env with the variables the tests read:
#   JOBFLOW_TEST_POSTGRES_URL   (database jobflow; dialogs and counters exist too)
#   JOBFLOW_TEST_CLICKHOUSE_ADDR
#   scripts/test-env.sh up | down
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.jobflow/test"
case "${1:-up}" in
up)
  mkdir -p "$dir"
  pg=$("$root/scripts/postgres.sh" start "$dir/postgres" "${TEST_PG_PORT:-55433}")
  ch=$("$root/scripts/clickhouse.sh" start "$dir/clickhouse" "${TEST_CH_TCP_PORT:-59001}" "${TEST_CH_HTTP_PORT:-58124}")
  printf "export JOBFLOW_TEST_POSTGRES_URL='%s'\nexport JOBFLOW_TEST_CLICKHOUSE_ADDR='%s'\n" "$pg" "$ch" >"$dir/env"
  cat "$dir/env"
  ;;
down)
  "$root/scripts/postgres.sh" stop "$dir/postgres" || true
  "$root/scripts/clickhouse.sh" stop "$dir/clickhouse" || true
  ;;
*) echo "usage: test-env.sh up|down" >&2; exit 2 ;;
esac
