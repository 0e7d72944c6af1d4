# shellcheck shell=bash
# Sourced by the hack/ scripts: the repository root, the pinned versions, logging, checks.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

# Pinned versions; a variable already set in the environment wins (e.g. KIND_CLUSTER_NAME=x).
while IFS='=' read -r key value; do
  [[ -z "${key}" || "${key}" == \#* ]] && continue
  if [[ -z "${!key:-}" ]]; then
    printf -v "${key}" '%s' "${value}"
    export "${key?}"
  fi
done < "${ROOT}/hack/versions.env"

PYTHON="${PYTHON:-python3}"
if [[ -x "${ROOT}/.venv/bin/python" ]]; then
  PYTHON="${ROOT}/.venv/bin/python"
fi

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# need CMD...: fail with one clear line when a command is missing.
need() {
  local cmd
  for cmd in "$@"; do
    command -v "${cmd}" >/dev/null 2>&1 || die "${cmd} is needed on PATH (docs/install.md lists the tools)"
  done
}

# The package version, which is also the chart's appVersion and the images' tag.
package_version() {
  "${PYTHON}" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
    "${ROOT}/pyproject.toml"
}

# tool_venv NAME REQUIREMENT: print the path of NAME from a private virtualenv under
# .venv/tools/NAME holding exactly REQUIREMENT, creating or replacing it when needed.
tool_venv() {
  local name="$1" requirement="$2"
  local dir="${ROOT}/.venv/tools/${name}"
  if [[ ! -x "${dir}/bin/${name}" || "$(cat "${dir}/.requirement" 2>/dev/null || true)" != "${requirement}" ]]; then
    log "installing ${requirement} into ${dir}"
    "${PYTHON}" -m venv --clear "${dir}"
    "${dir}/bin/python" -m pip install -qq "${requirement}"
    printf '%s\n' "${requirement}" >"${dir}/.requirement"
  fi
  printf '%s\n' "${dir}/bin/${name}"
}
