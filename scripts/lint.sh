#!/usr/bin/env bash
# `make lint` (part of `make test`): gofmt, go vet and staticcheck (the
# checks of staticcheck.conf) over every module of the repository.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
staticcheck="go run honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION:-v0.8.2}"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt: these files need gofmt -w:" >&2
  echo "$unformatted" >&2
  exit 1
fi
for m in . functions/*/ e2e deploy/grafana/check; do
  echo "== go vet + staticcheck ($m)"
  (cd "$m" && go vet ./... && $staticcheck ./...)
done
