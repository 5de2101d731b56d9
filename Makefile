# jobflow: see README.md. The two commands: `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
export GOFLAGS ?= -buildvcs=false
MODULES := . $(wildcard functions/*) e2e tools/func deploy/grafana/check

.DEFAULT_GOAL := help
.PHONY: help deps run build test lint tidy tidy-check bench load clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

deps: ## install what is missing (ClickHouse, PostgreSQL 15 from Debian; Go modules)
	@scripts/install-deps.sh

build: ## build the jobflow command into .jobflow/bin
	$(GO) build -o .jobflow/bin/jobflow ./cmd/jobflow

run: deps build ## start the whole pipeline locally, in the foreground (Ctrl-C stops it)
	exec .jobflow/bin/jobflow up

test: deps tidy-check lint ## lint and run every test (unit, integration, local e2e, offline Knative checks)
	scripts/test.sh
	@if $(MAKE) -n knative-check >/dev/null 2>&1; then $(MAKE) knative-check; fi

lint: ## gofmt, go vet and staticcheck over every module
	scripts/lint.sh

tidy: ## go mod tidy in every module
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done

tidy-check: ## fail if any module needs go mod tidy (run make tidy)
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy -diff >/dev/null) || { echo "$$m: go.mod/go.sum not tidy: run make tidy" >&2; exit 1; }; done

bench: deps ## run the benchmarks and print their figures (see docs/BENCHMARKS.md)
	scripts/bench.sh

load: deps ## scale-to-zero demo and figures: cold starts, activator overhead, hey on the receiver (report in .jobflow/load)
	scripts/load.sh

clean: ## remove .jobflow (binaries, logs, local data of the servers)
	-scripts/postgres.sh stop .jobflow/postgres; scripts/clickhouse.sh stop .jobflow/clickhouse
	rm -rf .jobflow

-include mk/*.mk
