#!/usr/bin/env bash
# Installs Knative Serving (+ Kourier), Knative Eventing, Eventing Kafka
# (controller, KafkaSource, KafkaSink, Kafka Broker) and the Strimzi
# operator into the current kubectl context, at pinned versions (mk/knative.mk
# passes them; the defaults below are the same).
set -euo pipefail
serving=${KNATIVE_SERVING_VERSION:-knative-v1.22.0}
kourier=${KNATIVE_KOURIER_VERSION:-knative-v1.22.0}
eventing=${KNATIVE_EVENTING_VERSION:-knative-v1.22.0}
kafka=${KNATIVE_KAFKA_VERSION:-knative-v1.22.2}
strimzi=${STRIMZI_VERSION:-0.45.0}
kourier_port=${KOURIER_NODE_PORT:-31080}
gh=https://github.com

step() { echo; echo "== $*"; }
wait_deploys() { kubectl wait deployment --all -n "$1" --for=condition=Available --timeout="${2:-300s}"; }

step "Knative Serving $serving"
kubectl apply -f "$gh/knative/serving/releases/download/$serving/serving-crds.yaml"
kubectl wait --for=condition=Established --all crd --timeout=120s
kubectl apply -f "$gh/knative/serving/releases/download/$serving/serving-core.yaml"
wait_deploys knative-serving

step "Kourier $kourier (NodePort $kourier_port)"
kubectl apply -f "$gh/knative-extensions/net-kourier/releases/download/$kourier/kourier.yaml"
kubectl patch configmap/config-network -n knative-serving --type merge \
  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
kubectl patch service/kourier -n kourier-system --type merge -p "{\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"name\":\"http2\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":8080,\"nodePort\":$kourier_port}]}}"
# Routes get <name>.<namespace>.127.0.0.1.sslip.io; the e2e suite sends
# that Host header to 127.0.0.1:$kourier_port.
kubectl patch configmap/config-domain -n knative-serving --type merge -p '{"data":{"127.0.0.1.sslip.io":""}}'
# Images of the local registry are pushed by digest; never resolve tags there.
kubectl patch configmap/config-deployment -n knative-serving --type merge \
  -p '{"data":{"registries-skipping-tag-resolving":"kind.local,ko.local,dev.local,localhost:5001"}}'
wait_deploys kourier-system

step "Knative Eventing $eventing"
kubectl apply -f "$gh/knative/eventing/releases/download/$eventing/eventing-crds.yaml"
kubectl wait --for=condition=Established --all crd --timeout=120s
kubectl apply -f "$gh/knative/eventing/releases/download/$eventing/eventing-core.yaml"
wait_deploys knative-eventing

step "Knative Eventing Kafka $kafka"
for f in eventing-kafka-controller eventing-kafka-source eventing-kafka-sink eventing-kafka-broker; do
  kubectl apply -f "$gh/knative-extensions/eventing-kafka-broker/releases/download/$kafka/$f.yaml"
done
wait_deploys knative-eventing 600s

step "Strimzi $strimzi"
kubectl create namespace kafka --dry-run=client -o yaml | kubectl apply -f -
# The release bundle names the namespace "myproject": install into kafka.
curl -fsSL "$gh/strimzi/strimzi-kafka-operator/releases/download/$strimzi/strimzi-cluster-operator-$strimzi.yaml" \
  | sed 's/namespace: .*/namespace: kafka/' | kubectl apply -n kafka -f -
wait_deploys kafka 600s
echo; echo "Knative and Strimzi are installed."
