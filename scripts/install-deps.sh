#!/usr/bin/env bash
# Installs what `make run` and `make test` need and are missing on a fresh
# Debian 12 machine: ClickHouse (Debian's clickhouse-server), the
# PostgreSQL 15 server, curl, chromium (browser tests), prometheus; and downloads the Go modules of every module.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
need=()
[ -x /usr/sbin/clickhouse-server ] || need+=(clickhouse-server)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v curl >/dev/null || need+=(curl)
command -v psql >/dev/null || need+=(postgresql-client-15)
# make run starts a local Prometheus (JOBFLOW_PROMETHEUS=false turns it off).
command -v prometheus >/dev/null || need+=(prometheus)
# The browser tests (console, live configuration page) drive Debian's chromium headless.
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]} from Debian..."
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to apt-get install ${need[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The Debian packages try to start their servers through systemd, which is
  # not here; jobflow starts its own servers (scripts/postgres.sh, scripts/clickhouse.sh).
fi
command -v go >/dev/null || { echo "install-deps: Go 1.26 is required (https://go.dev/dl)" >&2; exit 1; }
if [ ! -f "$root/.jobflow/.modules-downloaded" ] || [ "$root/go.sum" -nt "$root/.jobflow/.modules-downloaded" ]; then
  echo "install-deps: downloading Go modules..."
  (cd "$root" && go mod download)
  for f in "$root"/functions/*/; do (cd "$f" && go mod download); done
  mkdir -p "$root/.jobflow" && touch "$root/.jobflow/.modules-downloaded"
fi
