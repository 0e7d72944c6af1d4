#!/usr/bin/env bash
# Build the worker and operator images from this checkout (make images; kind-up.sh too):
#
#   $IMAGE_REGISTRY/emailqueue:$IMAGE_TAG            worker/Dockerfile
#   $IMAGE_REGISTRY/emailqueue-operator:$IMAGE_TAG   operator/Dockerfile
#
# IMAGE_TAG defaults to the package version, IMAGE_REGISTRY and PYTHON_IMAGE to
# hack/versions.env. Set PUSH=1 to push them afterwards. Needs docker.
set -o errexit -o nounset -o pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
cd "${ROOT}"

need docker
IMAGE_TAG="${IMAGE_TAG:-$(package_version)}"
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

for component in worker operator; do
  name="emailqueue"
  if [[ "${component}" == "operator" ]]; then
    name="emailqueue-operator"
  fi
  image="${IMAGE_REGISTRY}/${name}:${IMAGE_TAG}"
  log "building ${image} from ${component}/Dockerfile"
  docker build --file "${component}/Dockerfile" --tag "${image}" \
    --build-arg "PYTHON_IMAGE=${PYTHON_IMAGE}" \
    --build-arg "VERSION=${IMAGE_TAG}" \
    --build-arg "REVISION=${revision}" \
    "${ROOT}"
  if [[ "${PUSH:-0}" == "1" ]]; then
    log "pushing ${image}"
    docker push "${image}"
  fi
done
