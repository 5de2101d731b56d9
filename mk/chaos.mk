# The chaos suite (docs/RELIABILITY.md). Included by the top Makefile.
#   make chaos                      full size: 10 minutes of load (~17 minutes in all), prints the table
#   make chaos CHAOS_FLAGS='-size ci -seed 7'
# Its CI size runs in make test (internal/chaos TestChaosCI).
.PHONY: chaos
CHAOS_FLAGS ?= -size full

chaos: deps build ## the chaos suite: load + faults, then lost/doubled/verify table (docs/RELIABILITY.md)
	$(GO) build -o .jobflow/bin/jobflow-chaos ./cmd/jobflow-chaos
	.jobflow/bin/jobflow-chaos -jobflow .jobflow/bin/jobflow $(CHAOS_FLAGS)
