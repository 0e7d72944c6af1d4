#!/usr/bin/env bash
# Delete the kind cluster of hack/kind-up.sh (make kind-down). Idempotent: a cluster that
# does not exist is not an error. The images stay in the local Docker image store.
set -o errexit -o nounset -o pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

need kind
if kind get clusters 2>/dev/null | grep -qx "${KIND_CLUSTER_NAME}"; then
  log "deleting kind cluster ${KIND_CLUSTER_NAME}"
  kind delete cluster --name "${KIND_CLUSTER_NAME}"
else
  log "no kind cluster named ${KIND_CLUSTER_NAME}: nothing to do"
fi
