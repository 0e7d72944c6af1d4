#!/usr/bin/env bash
# A local cluster with everything an autoscaled queue needs (make kind-up):
#
#   1. a kind cluster (reused when it exists), node image pinned in hack/versions.env
#   2. KEDA from its Helm chart, in namespace keda
#   3. the worker and operator images, built from this checkout and loaded into kind
#   4. the operator, installed from charts/emailqueue-operator (helm upgrade --install)
#
# Idempotent: run it again after a code change to rebuild, reload and roll the operator.
# Needs docker, kind, kubectl and helm on PATH, and the project's .venv (make install).
# Then: make e2e, or kubectl apply -f manifests/samples/emailqueue.yaml.
#
# Environment: KIND_CLUSTER_NAME, IMAGE_REGISTRY, IMAGE_TAG (default: the package version),
# OPERATOR_NAMESPACE, and any other name in hack/versions.env.
set -o errexit -o nounset -o pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
cd "${ROOT}"

need docker kind kubectl helm
docker info >/dev/null 2>&1 || die "docker is installed but its daemon does not answer (is Docker running?)"
if ! kind version | grep -q "${KIND_VERSION}"; then
  warn "kind ${KIND_VERSION} is the tested version (hack/versions.env); you have: $(kind version)"
fi

IMAGE_TAG="${IMAGE_TAG:-$(package_version)}"
worker_image="${IMAGE_REGISTRY}/emailqueue:${IMAGE_TAG}"
operator_image="${IMAGE_REGISTRY}/emailqueue-operator:${IMAGE_TAG}"
context="kind-${KIND_CLUSTER_NAME}"
kubectl=(kubectl --context "${context}")

# 1. The cluster ----------------------------------------------------------------------------
if kind get clusters 2>/dev/null | grep -qx "${KIND_CLUSTER_NAME}"; then
  log "kind cluster ${KIND_CLUSTER_NAME} exists: reusing it"
else
  log "creating kind cluster ${KIND_CLUSTER_NAME} (${KIND_NODE_IMAGE})"
  kind create cluster --name "${KIND_CLUSTER_NAME}" --image "${KIND_NODE_IMAGE}" \
    --config hack/kind/cluster.yaml --wait 180s
fi
"${kubectl[@]}" cluster-info >/dev/null

# 2. KEDA ---------------------------------------------------------------------------------------
log "installing KEDA ${KEDA_CHART_VERSION} into namespace ${KEDA_NAMESPACE}"
helm upgrade --install keda keda --repo "${KEDA_CHART_REPO}" --version "${KEDA_CHART_VERSION}" \
  --kube-context "${context}" --namespace "${KEDA_NAMESPACE}" --create-namespace --wait --timeout 5m

# 3. Images ------------------------------------------------------------------------------------
IMAGE_TAG="${IMAGE_TAG}" "${ROOT}/hack/build-images.sh"
log "loading the images into kind"
kind load docker-image --name "${KIND_CLUSTER_NAME}" "${worker_image}" "${operator_image}"

# 4. The operator ------------------------------------------------------------------------------
log "installing the operator into namespace ${OPERATOR_NAMESPACE}"
"${kubectl[@]}" create namespace "${OPERATOR_NAMESPACE}" --dry-run=client --output yaml | "${kubectl[@]}" apply --filename -
"${kubectl[@]}" label namespace "${OPERATOR_NAMESPACE}" --overwrite \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest >/dev/null
# The image id as a pod annotation: a rebuilt image (same tag) rolls the operator; an
# unchanged one leaves it alone.
image_id="$(docker image inspect --format '{{.Id}}' "${operator_image}")"
helm upgrade --install emailqueue-operator charts/emailqueue-operator \
  --kube-context "${context}" --namespace "${OPERATOR_NAMESPACE}" \
  --set "image.repository=${IMAGE_REGISTRY}/emailqueue-operator" \
  --set "image.tag=${IMAGE_TAG}" \
  --set "image.pullPolicy=IfNotPresent" \
  --set "operator.kedaNamespace=${KEDA_NAMESPACE}" \
  --set-string "podAnnotations.emailqueue\.dev/image-id=${image_id}" \
  --wait --timeout 3m
"${kubectl[@]}" --namespace "${OPERATOR_NAMESPACE}" rollout status deployment/emailqueue-operator --timeout 120s

cat <<DONE

kind cluster ${KIND_CLUSTER_NAME} is ready (kubectl context ${context}):
  operator   ${operator_image} in namespace ${OPERATOR_NAMESPACE}
  workers    ${worker_image} (set spec.worker.image to it, as hack/e2e/emailqueue.yaml does)
  KEDA       ${KEDA_CHART_VERSION} in namespace ${KEDA_NAMESPACE}

Next:
  make e2e                                        # an autoscaled queue delivers a batch, end to end
  kubectl --context ${context} apply -f manifests/samples/emailqueue.yaml
  make kind-down                                  # delete the cluster
DONE
