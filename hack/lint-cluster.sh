#!/usr/bin/env bash
# Lint everything that ships to a cluster (make lint runs it after ruff and mypy):
#
#   - the Dockerfiles (worker/, operator/) with hadolint
#   - hack/*.sh with ShellCheck
#   - every YAML file but Helm templates with yamllint (.yamllint)
#   - the chart with Helm lint --strict, once per charts/emailqueue-operator/ci/*-values.yaml
#   - manifests/, its kustomize build and the rendered chart with kubernetes-validate
#     (KUBERNETES_VERSION) and checkov (every skip justified in hack/checkov.yaml)
#   - the chart's and manifests/'s CRD copies against their source (hack/sync-crd.py --check)
#
# hadolint, shellcheck, yamllint, kubernetes-validate and helm-python-sdk come from the
# project's .venv (make install); checkov lives in its own virtualenv under .venv/tools/
# (its pinned dependencies conflict with the project's), created on first use.
# Every tool runs even when an earlier one failed; the exit status is 1 if any failed.
set -o errexit -o nounset -o pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
cd "${ROOT}"

bin="${ROOT}/.venv/bin"
for tool in hadolint shellcheck yamllint kubernetes-validate; do
  [[ -x "${bin}/${tool}" ]] || die "${bin}/${tool} is missing: run make install"
done
checkov="$(tool_venv checkov "checkov==${CHECKOV_VERSION}")"

rendered="$(mktemp -d)"
trap 'rm -rf "${rendered}"' EXIT

failed=()
run() {
  local name="$1"
  shift
  log "${name}"
  if ! "$@"; then
    failed+=("${name}")
  fi
}

run "hadolint" "${bin}/hadolint" worker/Dockerfile operator/Dockerfile
run "shellcheck" "${bin}/shellcheck" --external-sources hack/*.sh
run "yamllint" "${bin}/yamllint" --strict .
run "helm lint --strict" "${PYTHON}" hack/chart.py lint
run "helm template" "${PYTHON}" hack/chart.py template --all --output "${rendered}"
run "CRD copies" "${PYTHON}" hack/sync-crd.py --check
# What `kubectl apply -k manifests/` would apply (kubectl's built-in kustomize, offline).
if command -v kubectl >/dev/null 2>&1; then
  run "kustomize build" kubectl kustomize manifests --output "${rendered}/kustomize-build.yaml"
else
  warn "no kubectl on PATH: the kustomize build of manifests/ is not checked"
fi

# Custom resources (EmailQueue, ServiceMonitor) have no schema in kubernetes-validate: they
# are reported as warnings and checked against their CRDs by tests/chart and tests/operator.
mapfile -t manifests < <(find manifests -name '*.yaml' ! -name kustomization.yaml | sort)
run "kubernetes-validate" "${bin}/kubernetes-validate" --strict --quiet --no-warn \
  --kubernetes-version "${KUBERNETES_VERSION}" "${manifests[@]}" "${rendered}"/*.yaml

# checkov's helm and kustomize frameworks need those binaries: it scans what they render.
run "checkov (chart, kustomize build)" "${checkov}" --config-file hack/checkov.yaml --directory "${rendered}"
run "checkov (manifests)" "${checkov}" --config-file hack/checkov.yaml --directory manifests

if ((${#failed[@]})); then
  printf '\nlint failed: %s\n' "$(IFS=,; echo "${failed[*]}")" >&2
  exit 1
fi
log "cluster lint passed"
