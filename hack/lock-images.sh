#!/usr/bin/env bash
# Regenerate the image lock files in requirements/ from pyproject.toml (and requirements/*.in):
# exact versions with hashes for every platform (the images are built for amd64 and arm64),
# resolved for the images' Python (3.11). Run after changing a dependency; commit the result.
#
#   hack/lock-images.sh            # rewrite requirements/{build,worker,operator}.txt
#   hack/lock-images.sh --upgrade  # also move every pin to the newest allowed version
#
# Needs the network (PyPI). tests/chart/test_images.py checks offline that the locks still
# satisfy pyproject.toml.
set -o errexit -o nounset -o pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

upgrade=()
if [[ "${1:-}" == "--upgrade" ]]; then
  upgrade=(--upgrade)
fi

uv="$(tool_venv uv "uv==${UV_VERSION}")"
cd "${ROOT}"

compile() {
  local out="$1"
  shift
  log "locking ${out}"
  "${uv}" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --custom-compile-command "hack/lock-images.sh" ${upgrade[@]+"${upgrade[@]}"} \
    --output-file "${out}" "$@"
}

# Build-time only (the wheel is built without build isolation, from pinned tools).
compile requirements/build.txt requirements/build.in
# The worker image: the package, uvloop, and aiosmtpd for `emailqueue sink`.
compile requirements/worker.txt pyproject.toml requirements/worker.in --extra speed --extra dashboard --extra dkim
# The operator image: the package with kopf and the Kubernetes client.
compile requirements/operator.txt pyproject.toml --extra operator
