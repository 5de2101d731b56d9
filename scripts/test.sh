#!/usr/bin/env bash
# `make test`: starts the test servers, runs vet and every test of the root
# module (unit, integration on real PostgreSQL/ClickHouse/Kafka-protocol
# broker, and the local engine end-to-end test) and of each function
# module, then stops the servers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/test-env.sh up >/dev/null
trap 'scripts/test-env.sh down' EXIT
# shellcheck disable=SC1091
source .jobflow/test/env
export JOBFLOW_TEST_POSTGRES_URL JOBFLOW_TEST_CLICKHOUSE_ADDR

# ClickHouse 18.16 (Debian's) takes inserts only from clickhouse-go up to
# v2.26.0; a `go get -u` must not move it silently.
# Every module that builds it counts: a function module builds its own binary.
for m in . functions/*/; do
  v=$(cd "$m" && go list -m -f '{{.Version}}' github.com/ClickHouse/clickhouse-go/v2 2>/dev/null) || continue
  [ "$v" = v2.26.0 ] || { echo "$m: clickhouse-go is $v: it must stay pinned at v2.26.0 (see docs/ARCHITECTURE.md)" >&2; exit 1; }
done

for f in functions/*/; do
  echo "== go vet + test ($f)"
  (cd "$f" && go vet ./... && go test -count=1 ./...)
done
echo "== go vet (root module)"
go vet ./...
echo "== go test (root module)"
go test -count=1 -timeout 40m ${GOTEST_FLAGS:-} ./...
# The dashboards' check is its own module (Prometheus's parser stays out of
# the root's go.mod): every panel's PromQL parses and names a metric that a
# `jobflow up` it starts exports (docs/GRAFANA.md).
echo "== go vet + test (deploy/grafana/check)"
(cd deploy/grafana/check && go vet ./... && go test -count=1 -timeout 20m ./...)
