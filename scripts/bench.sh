#!/usr/bin/env bash
# `make bench`: the benchmarks of docs/BENCHMARKS.md, in one go on this machine.
#  1. starts its own PostgreSQL (fsync on) and ClickHouse under .jobflow/bench
#     (ports BENCH_PG_PORT=55434, BENCH_CH_TCP_PORT=59002, BENCH_CH_HTTP_PORT=58125);
#  2. runs bench/jobflow-bench: raw CopyFrom / PrepareBatch (the limits), the
#     naive sinks, pgsink and chsink fed through the local engine from Kafka,
#     ClickHouse's Kafka table engine on the same topic, latency at half load
#     (sizes: BENCH_PG_ROWS, BENCH_CH_ROWS, ...: `go run ./bench/jobflow-bench env`),
#     and end to end: POST /create/job until queryable, for jobflow batched,
#     one event per request and the plain-Kafka baseline (bench/baseline),
#     GET /info under load (BENCH_ONLY=e2e alone, BENCH_E2E_SHORT=1 short);
#  3. runs the counters benchmark (pkg/counters/counter) on the same PostgreSQL;
#  4. runs the delivery and batch encoding (internal/kafkasource), broker
#     path against KafkaSource path (internal/trigger), activator
#     (internal/scaler) and batch decoding (pkg/runtime/cebatch) benchmarks;
#     and the orders saga against its sequential baseline (pkg/orders/flow);
#  5. stops the servers and prints the figures (also in .jobflow/bench/results.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir="$root/.jobflow/bench"
mkdir -p "$dir"
# One bench at a time: a second would share (and then delete) the first's servers.
exec 9>"$dir/bench.lock"
flock -n 9 || { echo "bench.sh: another bench is running (lock $dir/bench.lock)" >&2; exit 1; }
echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
# Bench data is disposable: a ClickHouse data dir grown by earlier runs
# makes the server slow to start. It is removed when the bench ends, not
# before it starts: on an ext4 without a journal (these machines) the
# inode allocator skips inodes freed in the last minutes one by one, and
# tens of thousands of freshly deleted part files slowed every file
# ClickHouse then created (bench/jobflow-bench/db.go: freshClickHouse).
# Here only what a killed run left behind. The effect lasts about a
# minute after the inodes' blocks are written back (ext4's RECENTCY_MIN
# 60 s, 300 s more while dirty): a run starting sooner after a deletion
# waits for it to pass (BENCH_SETTLE seconds, 100 by default).
deleted="$dir/clickhouse.deleted"
drop_clickhouse_data() { rm -rf "$dir/clickhouse/data" "$dir/clickhouse/tmp"; sync; date +%s >"$deleted"; }
if [ -d "$dir/clickhouse/data" ]; then drop_clickhouse_data; fi
if [ -f "$deleted" ]; then
  wait=$(( $(cat "$deleted") + ${BENCH_SETTLE:-100} - $(date +%s) ))
  if [ "$wait" -gt 0 ]; then
    echo "== waiting ${wait}s: ClickHouse's files of the previous run were deleted moments ago (see scripts/bench.sh)"
    sleep "$wait"
  fi
fi
pg=$(scripts/postgres.sh start "$dir/postgres" "${BENCH_PG_PORT:-55434}")
ch=$(scripts/clickhouse.sh start "$dir/clickhouse" "${BENCH_CH_TCP_PORT:-59002}" "${BENCH_CH_HTTP_PORT:-58125}")
trap 'scripts/postgres.sh stop "$dir/postgres"; scripts/clickhouse.sh stop "$dir/clickhouse"; drop_clickhouse_data' EXIT
echo "== servers: $pg  clickhouse $ch"

go build -o "$dir/jobflow-bench" ./bench/jobflow-bench
echo "== sinks (bench/jobflow-bench; progress on stderr, engine log in $dir/engine.log)"
BENCH_POSTGRES_URL="$pg" BENCH_CLICKHOUSE_ADDR="$ch" BENCH_DIR="$dir" BENCH_OUT="$dir/results.md" \
  "$dir/jobflow-bench"

if [ -z "${BENCH_SKIP_COUNTERS:-}" ]; then
  echo
  echo "== counters (go test -run '^\$' -bench BenchmarkCounters -benchtime 1x ./pkg/counters/counter)"
  JOBFLOW_TEST_POSTGRES_URL="$pg" go test -run '^$' -bench BenchmarkCounters -benchtime 1x ./pkg/counters/counter \
    | tee "$dir/counters.txt"
fi
if [ -z "${BENCH_SKIP_DELIVERY:-}" ]; then
  echo
  echo "== delivery through the engine's KafkaSource, 1 KB events (go test -run '^\$' -bench BenchmarkDelivery -benchtime 20000x ./internal/kafkasource)"
  go test -run '^$' -bench BenchmarkDelivery -benchtime 20000x ./internal/kafkasource | tee "$dir/delivery.txt"
  echo
  echo "== the engine's side of a batch of 1000 CSV events (go test -run '^\$' -bench EncodeBatch -benchmem ./internal/kafkasource)"
  go test -run '^$' -bench EncodeBatch -benchmem ./internal/kafkasource | tee "$dir/encode.txt"
  echo
  echo "== Broker path against KafkaSource path from their ingress: 10 Triggers each matching a tenth, against one KafkaSource, 1 KB events; capacity and p99 ingress -> subscriber at half of it (go test -run '^\$' -bench BrokerVersusSource -benchtime 20000x ./internal/trigger)"
  go test -run '^$' -bench BrokerVersusSource -benchtime 20000x ./internal/trigger | tee "$dir/broker.txt"
  echo
  echo "== activator overhead on a warm request (go test -run '^\$' -bench WarmRequest -benchtime 3000x ./internal/scaler)"
  go test -run '^$' -bench WarmRequest -benchtime 3000x ./internal/scaler | tee "$dir/activator.txt"
  echo
  echo "== a sink's decoding of a batch of 1000 CSV events, ours and the SDK's (go test -run '^\$' -bench ReadEvents ./pkg/runtime/cebatch)"
  go test -run '^$' -bench ReadEvents -benchmem ./pkg/runtime/cebatch | tee "$dir/decode.txt"
  echo
  echo "== live configuration: 10,000 SSE subscribers on one instance, change -> all, reconnect storm, polling beside it (go test -run '^\$' -bench Subscribers -benchtime 1x ./pkg/config/subscribe)"
  go test -run '^$' -bench BenchmarkSubscribers -benchtime 1x -v ./pkg/config/subscribe | tee "$dir/config.txt"
  echo
  echo "== live configuration: git push -> a subscriber (go test -run '^\$' -bench GitPush -benchtime 10x ./pkg/config/source)"
  go test -run '^$' -bench BenchmarkGitPushToSubscriber -benchtime 10x -v ./pkg/config/source | tee "$dir/config-push.txt"
fi
if [ -z "${BENCH_SKIP_ORDERS:-}" ]; then
  echo
  echo "== orders: capacity, placed -> decided p50/p99 at 25/50/75 %, the sequential baseline (pkg/orders/flow TestOrdersBench; BENCH_ORDERS_CAPACITY, BENCH_ORDERS_SECONDS)"
  JOBFLOW_TEST_POSTGRES_URL="$pg" JOBFLOW_TEST_CLICKHOUSE_ADDR="$ch" JOBFLOW_BENCH_ORDERS=1 \
    go test -v -count=1 -run TestOrdersBench -timeout 30m ./pkg/orders/flow | grep '^orders ' | tee "$dir/orders.txt"
fi
echo
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
