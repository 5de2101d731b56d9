# Knative path (docs/KNATIVE.md). Included by the top Makefile.
#
#   make knative-check    offline checks (part of make test): manifests with
#                         Knative's types, Validate() and CRD schemas, func.yaml
#                         schema, topology = local engine's, every function
#                         built with the real func CLI, one run and invoked
#   make kind-up          kind cluster + local registry (localhost:5001)
#   make knative-install  Serving + Kourier, Eventing, Eventing Kafka, Strimzi
#   make deploy           databases, Kafka, func deploy of every function,
#                         sinks/ and triggers/, the CDC source
#   make e2e              the cluster suite (e2e/knative) against that cluster
#   make kind-down        delete the cluster and the registry

KNATIVE_ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST))/..)))

# Pinned versions. The Go libraries the checks use are in e2e/go.mod
# (knative.dev/eventing v0.50.0, knative.dev/eventing-kafka-broker v0.49.2
# = release knative-v1.22.2).
FUNC_VERSION             := v0.44.0
FUNC_COMMIT              := 20a173a6dec2e00c474bdad8e47d442c23fe7770
KIND_VERSION             := v0.30.0
HEY_VERSION              := v0.1.4
KNATIVE_SERVING_VERSION  := knative-v1.22.0
KNATIVE_KOURIER_VERSION  := knative-v1.22.0
KNATIVE_EVENTING_VERSION := knative-v1.22.0
KNATIVE_KAFKA_VERSION    := knative-v1.22.2
STRIMZI_VERSION          := 0.45.0

KNATIVE_TOOLS := $(KNATIVE_ROOT)/.jobflow/tools
FUNC          := $(KNATIVE_TOOLS)/func-$(FUNC_VERSION)/func
KIND          := $(KNATIVE_TOOLS)/kind-$(KIND_VERSION)/kind
HEY           := $(KNATIVE_TOOLS)/hey-$(HEY_VERSION)/hey
KNATIVE_CHECK_TIMEOUT ?= 45m
JOBFLOW_E2E_KUBECONFIG ?= $(or $(KUBECONFIG),$(HOME)/.kube/config)

.PHONY: func-cli func-proxy knative-check knative-vet kind-up knative-install deploy e2e kind-down

# The func CLI, built once per version from tools/func (about 3.5 min cold,
# well under a minute with a warm Go build cache) and kept in .jobflow/tools.
func-cli: $(FUNC) ## build the func CLI v0.44.0 into .jobflow/tools (cached per version)
$(FUNC): $(KNATIVE_ROOT)/tools/func/go.mod $(KNATIVE_ROOT)/tools/func/go.sum
	@mkdir -p $(dir $@)
	cd $(KNATIVE_ROOT)/tools/func && GOWORK=off go build -trimpath -o $@.tmp \
	  -ldflags "-X knative.dev/func/pkg/app.vers=$(FUNC_VERSION) -X knative.dev/func/pkg/app.hash=$(FUNC_COMMIT)" \
	  knative.dev/func/cmd/func
	mv $@.tmp $@
	$@ version

# The root module as github.com/jobflow/jobflow v0.1.0 in a file-based Go
# module proxy, for building a function with func by hand (docs/KNATIVE.md).
func-proxy:
	cd $(KNATIVE_ROOT)/e2e && GOWORK=off go run ./cmd/modproxy -root .. -out $(KNATIVE_ROOT)/.jobflow/knative/func/goproxy

knative-vet:
	@out=$$(gofmt -l $(KNATIVE_ROOT)/e2e $(KNATIVE_ROOT)/tools); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	cd $(KNATIVE_ROOT)/e2e && GOWORK=off go vet ./...

knative-check: func-cli knative-vet ## offline Knative checks: manifests, func.yaml, topology, func builds
	cd $(KNATIVE_ROOT)/e2e && GOWORK=off JOBFLOW_FUNC=$(FUNC) \
	  go test -count=1 -timeout $(KNATIVE_CHECK_TIMEOUT) ./...

$(KIND):
	@mkdir -p $(dir $@)
	GOBIN=$(dir $@) go install sigs.k8s.io/kind@$(KIND_VERSION)

$(HEY):
	@mkdir -p $(dir $@)
	GOBIN=$(dir $@) go install github.com/rakyll/hey@$(HEY_VERSION)

kind-up: $(KIND) ## kind cluster + local registry localhost:5001 (needs Docker)
	KIND=$(KIND) $(KNATIVE_ROOT)/scripts/knative-kind.sh up

knative-install: ## install Knative Serving/Kourier/Eventing/Eventing Kafka and Strimzi (pinned)
	KNATIVE_SERVING_VERSION=$(KNATIVE_SERVING_VERSION) KNATIVE_KOURIER_VERSION=$(KNATIVE_KOURIER_VERSION) \
	KNATIVE_EVENTING_VERSION=$(KNATIVE_EVENTING_VERSION) KNATIVE_KAFKA_VERSION=$(KNATIVE_KAFKA_VERSION) \
	STRIMZI_VERSION=$(STRIMZI_VERSION) $(KNATIVE_ROOT)/scripts/knative-install.sh

deploy: func-cli ## deploy jobflow to the current kubectl context (func deploy + manifests)
	JOBFLOW_FUNC=$(FUNC) $(KNATIVE_ROOT)/scripts/knative-deploy.sh

e2e: $(HEY) ## run the Knative e2e suite against the cluster
	cd $(KNATIVE_ROOT)/e2e && GOWORK=off JOBFLOW_E2E_KUBECONFIG=$(JOBFLOW_E2E_KUBECONFIG) JOBFLOW_E2E_HEY=$(HEY) \
	  go test -count=1 -timeout 40m -v -run 'TestCluster' ./knative/

kind-down: $(KIND) ## delete the kind cluster and the registry
	KIND=$(KIND) $(KNATIVE_ROOT)/scripts/knative-kind.sh down
