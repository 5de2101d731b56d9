#!/usr/bin/env bash
# kind cluster with a local registry, as in kind's "local registry" guide.
#   scripts/knative-kind.sh up | down
# Env: KIND (kind binary), KIND_CLUSTER (jobflow), REGISTRY_PORT (5001),
#      REGISTRY_IMAGE (registry:2), KUBECONFIG (where kind writes the context).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kind=${KIND:-kind}
cluster=${KIND_CLUSTER:-jobflow}
reg_name=kind-registry
reg_port=${REGISTRY_PORT:-5001}
reg_image=${REGISTRY_IMAGE:-registry:2}

need() { command -v "$1" >/dev/null 2>&1 || { echo "knative-kind: $1 is required ($2)" >&2; exit 1; }; }

case "${1:-}" in
up)
  need docker "kind runs its nodes as containers"
  need "$kind" "make kind-up installs it with go install"
  need kubectl "https://kubernetes.io/docs/tasks/tools/"
  if [ "$(docker inspect -f '{{.State.Running}}' "$reg_name" 2>/dev/null || true)" != true ]; then
    docker run -d --restart=always -p "127.0.0.1:${reg_port}:5000" --network bridge --name "$reg_name" "$reg_image"
  fi
  if ! "$kind" get clusters | grep -qx "$cluster"; then
    "$kind" create cluster --name "$cluster" --config "$root/kind-config.yaml" --wait 120s
  fi
  # Nodes pull localhost:<port>/... from the registry container.
  dir="/etc/containerd/certs.d/localhost:${reg_port}"
  for node in $("$kind" get nodes --name "$cluster"); do
    docker exec "$node" mkdir -p "$dir"
    printf '[host."http://%s:5000"]\n' "$reg_name" | docker exec -i "$node" cp /dev/stdin "$dir/hosts.toml"
  done
  if [ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "$reg_name")" = null ]; then
    docker network connect kind "$reg_name"
  fi
  kubectl apply -f - <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "localhost:${reg_port}"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
YAML
  echo "kind cluster $cluster is up; registry localhost:${reg_port}; kubectl context kind-$cluster"
  ;;
down)
  need "$kind" "make kind-up installs it with go install"
  "$kind" delete cluster --name "$cluster" || true
  docker rm -f "$reg_name" >/dev/null 2>&1 || true
  ;;
*) echo "usage: knative-kind.sh up|down" >&2; exit 2 ;;
esac
