#!/usr/bin/env bash
# Deploys jobflow into the current kubectl context (after knative-install):
# namespaces and databases, the Strimzi Kafka cluster and topics (brokers/),
# every function with `func deploy` (host builder, pushed to localhost:5001),
# the KafkaSinks + SinkBindings (sinks/) and KafkaSources (triggers/), and the
# adapters/ (the CDC source, with ko). Env: JOBFLOW_FUNC (func CLI), KO (ko command).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cluster_dir="$root/e2e/knative/cluster"
: "${JOBFLOW_FUNC:?JOBFLOW_FUNC must name the func CLI (make func-cli)}"
ko=${KO:-go run github.com/google/ko@v0.17.1}

step() { echo; echo "== $*"; }

step "namespaces and databases"
kubectl apply -f "$cluster_dir/00-namespaces.yaml" -f "$cluster_dir/10-databases.yaml"
kubectl wait deployment/postgres deployment/clickhouse -n jobflow --for=condition=Available --timeout=300s

step "Kafka (Strimzi) and topics"
kubectl apply -f "$root/brokers/kafka.yaml" -f "$root/brokers/topics.yaml"
kubectl wait kafka/jobflow -n kafka --for=condition=Ready --timeout=600s
kubectl wait kafkatopic --all -n kafka --for=condition=Ready --timeout=300s
kubectl apply -f "$root/brokers/kafka-broker.yaml"

step "functions (func deploy, host builder)"
(cd "$root/e2e" && go run ./cmd/jobflow-func -func "$JOBFLOW_FUNC" -namespace jobflow deploy)

step "KafkaSinks, SinkBindings, KafkaSources"
kubectl apply -f "$root/sinks/"
kubectl apply -f "$root/triggers/"

step "adapters/: the CDC source (ko)"
(cd "$root" && KO_DOCKER_REPO=localhost:5001/jobflow $ko resolve --base-import-paths -f "$root/adapters/") | kubectl apply -f -

step "waiting for readiness"
kubectl wait ksvc --all -n jobflow --for=condition=Ready --timeout=300s
kubectl wait kafkasink --all -n jobflow --for=condition=Ready --timeout=300s
kubectl wait sinkbinding --all -n jobflow --for=condition=Ready --timeout=300s
kubectl wait kafkasource --all -n jobflow --for=condition=Ready --timeout=300s
kubectl wait broker --all -n jobflow --for=condition=Ready --timeout=300s
kubectl get ksvc -n jobflow
echo; echo "jobflow is deployed: curl -H 'Host: receiver.jobflow.127.0.0.1.sslip.io' http://127.0.0.1:31080/create/job -d '{\"sleep\":100}'"
