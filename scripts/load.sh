#!/usr/bin/env bash
# `make load`: starts the local engine (its own state dir and ports, so a
# `make run` may keep running), wakes every function from zero to measure
# cold starts and idle RSS, measures the activator's overhead on a warm
# request, drives the receiver with hey (LOAD_CONCURRENCY for LOAD_DURATION),
# idles until every function is back at zero, and writes
# .jobflow/load/{load-report.md,load.csv,load.png}.
#
# Settings (environment): LOAD_CONCURRENCY (50), LOAD_DURATION (60s),
# LOAD_COLDSTARTS (5 per function), LOAD_WINDOW (6s: the autoscalers'
# stable window, Knative's minimum; its default is 60s) and LOAD_GRACE
# (2s: scale-to-zero grace; Knative's 30s), so the run takes minutes, not
# a quarter of an hour; LOAD_OUT (.jobflow/load).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
conc=${LOAD_CONCURRENCY:-50} dur=${LOAD_DURATION:-60s} colds=${LOAD_COLDSTARTS:-5}
window=${LOAD_WINDOW:-6s} grace=${LOAD_GRACE:-2s} out=${LOAD_OUT:-$root/.jobflow/load}
state="$root/.jobflow/load-engine"
mkdir -p "$state" "$out"

go build -o "$root/.jobflow/bin/jobflow" ./cmd/jobflow
go build -o "$root/.jobflow/bin/jobflow-load" ./bench/jobflow-load
hey=$(command -v hey || true)
if [ -z "$hey" ]; then
  hey="$root/.jobflow/tools/hey-v0.1.4/hey" # the version mk/knative.mk pins
  [ -x "$hey" ] || GOBIN="$(dirname "$hey")" go install github.com/rakyll/hey@v0.1.4
fi

export JOBFLOW_DIR="$state" JOBFLOW_KAFKA_PERSIST=false JOBFLOW_KAFKA_PORT=19092 \
  JOBFLOW_POSTGRES_PORT=55442 JOBFLOW_CLICKHOUSE_TCP_PORT=59010 JOBFLOW_CLICKHOUSE_HTTP_PORT=58130 \
  JOBFLOW_PORTS=receiver:18080,query:18081,dialogs:18082 JOBFLOW_INGRESS_PORT=18070 JOBFLOW_ADMIN_PORT=18079 \
  JOBFLOW_AUTOSCALE_WINDOW="$window" JOBFLOW_SCALE_TO_ZERO_GRACE="$grace" JOBFLOW_STATUS_INTERVAL=5s
echo "load: engine log in $state/engine.log"
"$root/.jobflow/bin/jobflow" up >"$state/engine.log" 2>&1 &
engine=$!
stop_engine() {
  kill -INT "$engine" 2>/dev/null || true
  wait "$engine" 2>/dev/null || true
  scripts/postgres.sh stop "$state/postgres" >/dev/null 2>&1 || true
  scripts/clickhouse.sh stop "$state/clickhouse" >/dev/null 2>&1 || true
}
trap stop_engine EXIT
until grep -q "jobflow is up" "$state/engine.log"; do
  kill -0 "$engine" 2>/dev/null || { tail -30 "$state/engine.log"; echo "load: the engine stopped" >&2; exit 1; }
  sleep 1
done

"$root/.jobflow/bin/jobflow-load" -admin http://127.0.0.1:18079 -target http://127.0.0.1:18080/create/job \
  -hey "$hey" -c "$conc" -d "$dur" -coldstarts "$colds" -out "$out" \
  -note "Engine: \`jobflow up\` with JOBFLOW_AUTOSCALE_WINDOW=$window, JOBFLOW_SCALE_TO_ZERO_GRACE=$grace (Knative's defaults: 60s, 30s), func.yaml annotations otherwise (target 100 at 70%); hey runs on the same $(nproc)-CPU machine as the engine, PostgreSQL and ClickHouse."
