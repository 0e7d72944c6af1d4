#!/usr/bin/env bash
# End to end on a real cluster (make e2e, after make kind-up): an EmailQueue with a managed
# Redis and workers that scale to zero delivers a batch to an in-cluster SMTP sink
# (`emailqueue sink`), and KEDA scales the workers up under the backlog and back to zero.
#
#   1. a fresh namespace (restricted Pod Security enforced), the sink and its DSN Secret
#   2. EmailQueue e2e (hack/e2e/emailqueue.yaml): Ready, ScaledObject Ready, workers at zero
#   3. Job enqueue: E2E_EMAILS emails in one batch (Mailer.send_many)
#   4. all delivered (emailqueue stats --json), none failed, every one seen by the sink once
#   5. KEDA scaled the workers up (peak >= E2E_MIN_PEAK_WORKERS) and back to zero
#   6. the EmailQueue's status counts them; deleting it removes every child but the volume
#
# Prints a summary and exits 1 on any miss. Idempotent: each run starts from a new
# namespace (an old one is deleted first). Environment (defaults in brackets):
#   E2E_CONTEXT [kind-$KIND_CLUSTER_NAME]  E2E_NAMESPACE [emailqueue-e2e]
#   E2E_EMAILS [20000]  E2E_MIN_PEAK_WORKERS [2]  E2E_DELIVERY_TIMEOUT [900] seconds
#   E2E_KEEP [0]: 1 keeps the namespace for inspection
#   WORKER_IMAGE [$IMAGE_REGISTRY/emailqueue:<package version>], as loaded by kind-up.sh
set -o errexit -o nounset -o pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
cd "${ROOT}"

need kubectl
E2E_CONTEXT="${E2E_CONTEXT:-kind-${KIND_CLUSTER_NAME}}"
E2E_NAMESPACE="${E2E_NAMESPACE:-emailqueue-e2e}"
E2E_EMAILS="${E2E_EMAILS:-20000}"
E2E_MIN_PEAK_WORKERS="${E2E_MIN_PEAK_WORKERS:-2}"
E2E_DELIVERY_TIMEOUT="${E2E_DELIVERY_TIMEOUT:-900}"
E2E_KEEP="${E2E_KEEP:-0}"
WORKER_IMAGE="${WORKER_IMAGE:-${IMAGE_REGISTRY}/emailqueue:${IMAGE_TAG:-$(package_version)}}"

QUEUE=e2e
k=(kubectl --context "${E2E_CONTEXT}")
kn=("${k[@]}" --namespace "${E2E_NAMESPACE}")
# Every child the operator creates for EmailQueue e2e (builders/common.py names them).
CHILDREN=(
  "deployment/${QUEUE}-worker" "serviceaccount/${QUEUE}-worker" "poddisruptionbudget/${QUEUE}-worker"
  "scaledobject.keda.sh/${QUEUE}-worker" "triggerauthentication.keda.sh/${QUEUE}-worker"
  "statefulset/${QUEUE}-redis" "service/${QUEUE}-redis" "configmap/${QUEUE}-redis"
  "networkpolicy/${QUEUE}-redis" "secret/${QUEUE}-redis-auth"
)

# ---- bookkeeping -----------------------------------------------------------------------------
results=()
passed=0
failed=0
started=${SECONDS}
watch_file="$(mktemp)"
watcher_pid=""

pass() {
  results+=("PASS|$1|$2")
  passed=$((passed + 1))
  log "PASS ${1}: ${2}"
}
fail() {
  results+=("FAIL|$1|$2")
  failed=$((failed + 1))
  warn "FAIL ${1}: ${2}"
}

finish() {
  local status=$?
  if [[ -n "${watcher_pid}" ]]; then
    kill "${watcher_pid}" 2>/dev/null || true
  fi
  rm -f "${watch_file}"
  if ((status != 0 && failed == 0)); then
    fail "run" "stopped early (exit status ${status})"
  fi
  printf '\n%-6s %-26s %s\n' "RESULT" "CHECK" "DETAIL"
  local row
  for row in ${results[@]+"${results[@]}"}; do
    IFS='|' read -r result check detail <<<"${row}"
    printf '%-6s %-26s %s\n' "${result}" "${check}" "${detail}"
  done
  printf '\ne2e on %s, namespace %s, %s emails, %ss\n' "${E2E_CONTEXT}" "${E2E_NAMESPACE}" "${E2E_EMAILS}" \
    "$((SECONDS - started))"
  printf '%d passed, %d failed\n' "${passed}" "${failed}"
  if ((failed > 0)); then
    exit 1
  fi
}
trap finish EXIT

# Stop here: later checks make no sense without this one.
abort() {
  fail "$1" "$2"
  diagnose
  exit 1
}

diagnose() {
  warn "state of namespace ${E2E_NAMESPACE}:"
  "${kn[@]}" get emailqueue,deployment,statefulset,pod,job,scaledobject,hpa -o wide >&2 || true
  "${kn[@]}" describe emailqueue "${QUEUE}" >&2 || true
  "${kn[@]}" get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 30 >&2 || true
  "${k[@]}" logs --all-containers --tail=40 --selector app.kubernetes.io/name=emailqueue-operator \
    --all-namespaces >&2 || true
}

# wait_for SECONDS COMMAND...: run COMMAND every 2 seconds until it succeeds; 1 on timeout.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 2
  done
}

# The manifests in hack/e2e/ with their ${...} placeholders filled in.
manifest() {
  local text
  text="$(<"hack/e2e/$1")"
  text="${text//\$\{WORKER_IMAGE\}/${WORKER_IMAGE}}"
  text="${text//\$\{E2E_EMAILS\}/${E2E_EMAILS}}"
  printf '%s\n' "${text}"
}

worker_replicas() { "${kn[@]}" get deployment "${QUEUE}-worker" --output 'jsonpath={.spec.replicas}' 2>/dev/null; }
workers_at_zero() {
  [[ "$(worker_replicas)" == "0" ]] &&
    [[ -z "$("${kn[@]}" get pods --selector "app.kubernetes.io/instance=${QUEUE},app.kubernetes.io/component=worker" \
      --output name 2>/dev/null)" ]]
}

# stats: "sent backlog delayed failed" from `emailqueue stats --json` inside the client pod.
stats() {
  "${kn[@]}" exec e2e-client -- emailqueue stats --json 2>/dev/null |
    "${PYTHON}" -c 'import json, sys
d = json.load(sys.stdin)
print(d["counters"].get("sent", 0), d["backlog"], d["delayed"], d["failed"])'
}

all_delivered() {
  local sent backlog delayed dead now
  read -r sent backlog delayed dead <<<"$(stats || echo "0 -1 -1 -1")"
  now=${SECONDS}
  if ((now - ${last_progress:-0} >= 10)); then
    log "sent ${sent}/${E2E_EMAILS}, backlog ${backlog}, delayed ${delayed}, failed ${dead}, workers $(worker_replicas)"
    last_progress=${now}
  fi
  ((sent + dead >= E2E_EMAILS && backlog == 0 && delayed == 0))
}

# ---- 0. preconditions --------------------------------------------------------------------------
log "e2e against context ${E2E_CONTEXT} with ${WORKER_IMAGE}"
"${k[@]}" version --request-timeout=10s >/dev/null 2>&1 ||
  abort "cluster" "context ${E2E_CONTEXT} does not answer: run make kind-up (or set E2E_CONTEXT)"
"${k[@]}" get crd emailqueues.emailqueue.dev >/dev/null 2>&1 ||
  abort "cluster" "the EmailQueue CRD is not installed: run make kind-up"
"${k[@]}" get crd scaledobjects.keda.sh >/dev/null 2>&1 ||
  abort "cluster" "KEDA is not installed: run make kind-up"
operator_ready="$("${k[@]}" get deployment --all-namespaces --selector app.kubernetes.io/name=emailqueue-operator \
  --output 'jsonpath={.items[*].status.readyReplicas}')"
[[ "${operator_ready}" == *1* ]] || abort "cluster" "the emailqueue operator is not running: run make kind-up"
pass "cluster" "CRD, KEDA and a ready operator in ${E2E_CONTEXT}"

# ---- 1. namespace and SMTP sink ----------------------------------------------------------------
if "${k[@]}" get namespace "${E2E_NAMESPACE}" >/dev/null 2>&1; then
  log "deleting namespace ${E2E_NAMESPACE} left by an earlier run"
  "${k[@]}" delete namespace "${E2E_NAMESPACE}" --wait=true --timeout=300s
fi
"${k[@]}" create namespace "${E2E_NAMESPACE}" >/dev/null
"${k[@]}" label namespace "${E2E_NAMESPACE}" >/dev/null \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest
"${kn[@]}" create secret generic smtp-credentials --from-literal=dsn='smtp://smtp-sink:2525?auto_tls=false' >/dev/null
manifest smtp-sink.yaml | "${kn[@]}" apply --filename - >/dev/null
"${kn[@]}" rollout status deployment/smtp-sink --timeout=180s >/dev/null ||
  abort "smtp sink" "the sink did not become ready (is ${WORKER_IMAGE} loaded into the cluster?)"
pass "smtp sink" "emailqueue sink ready in ${E2E_NAMESPACE} (restricted Pod Security enforced)"

# ---- 2. the queue --------------------------------------------------------------------------------
manifest emailqueue.yaml | "${kn[@]}" apply --filename - >/dev/null
t0=${SECONDS}
"${kn[@]}" wait --for=condition=Ready "emailqueue/${QUEUE}" --timeout=300s >/dev/null ||
  abort "queue ready" "EmailQueue ${QUEUE} not Ready within 300s"
pass "queue ready" "EmailQueue ${QUEUE} Ready after $((SECONDS - t0))s"
"${kn[@]}" wait --for=condition=Ready "scaledobject.keda.sh/${QUEUE}-worker" --timeout=180s >/dev/null ||
  abort "autoscaler ready" "ScaledObject ${QUEUE}-worker not Ready within 180s"
pass "autoscaler ready" "ScaledObject ${QUEUE}-worker Ready"
wait_for 240 workers_at_zero || abort "idle at zero" "workers still at $(worker_replicas) replicas with an empty queue"
pass "idle at zero" "no worker pods while the queue is empty"

# ---- 3. load -------------------------------------------------------------------------------------
manifest producer.yaml | "${kn[@]}" apply --filename - >/dev/null
"${kn[@]}" wait --for=condition=Ready pod/e2e-client --timeout=120s >/dev/null ||
  abort "client" "pod e2e-client not ready"
# Sample the worker count every 2 seconds while the batch is delivered.
(
  while :; do
    printf '%s\n' "$(worker_replicas || echo 0)" >>"${watch_file}"
    sleep 2
  done
) &
watcher_pid=$!
t0=${SECONDS}
"${kn[@]}" wait --for=condition=Complete job/enqueue --timeout=600s >/dev/null ||
  abort "enqueue" "Job enqueue did not complete: $("${kn[@]}" logs job/enqueue --tail=5 2>&1 || true)"
enqueued="$("${kn[@]}" logs job/enqueue | awk '/^enqueued/ {print $2}')"
[[ "${enqueued}" == "${E2E_EMAILS}" ]] || abort "enqueue" "the Job enqueued '${enqueued}', not ${E2E_EMAILS}"
pass "enqueue" "${E2E_EMAILS} emails enqueued in $((SECONDS - t0))s"

# ---- 4. delivery ---------------------------------------------------------------------------------
last_progress=0
if wait_for "${E2E_DELIVERY_TIMEOUT}" all_delivered; then
  read -r sent backlog delayed dead <<<"$(stats || echo "0 -1 -1 -1")"
  pass "delivered" "${sent} sent in $((SECONDS - t0))s since the first enqueue; backlog ${backlog}"
  if ((dead == 0)); then
    pass "no dead letters" "failed 0"
  else
    fail "no dead letters" "${dead} dead letter(s): kubectl exec e2e-client -- emailqueue failed show"
  fi
else
  fail "delivered" "not all delivered within ${E2E_DELIVERY_TIMEOUT}s: $(stats || echo 'stats unavailable')"
  diagnose
fi
read -r accepted unique <<<"$("${kn[@]}" logs deployment/smtp-sink --tail=-1 |
  awk '$1 == "accepted" {n++; seen[$2] = 1} END {print n + 0, length(seen)}' || echo "0 0")"
if ((unique == E2E_EMAILS)); then
  pass "sink received" "${unique} distinct messages, $((accepted - unique)) duplicate(s)"
else
  fail "sink received" "${unique} distinct messages of ${E2E_EMAILS} (${accepted} deliveries)"
fi

# ---- 5. scaling ----------------------------------------------------------------------------------
peak="$(sort -n "${watch_file}" | tail -n 1)"
peak="${peak:-0}"
if ((peak >= E2E_MIN_PEAK_WORKERS)); then
  pass "scaled up" "from zero to ${peak} workers under the backlog"
else
  fail "scaled up" "peak ${peak} workers < ${E2E_MIN_PEAK_WORKERS} (a larger E2E_EMAILS keeps the backlog longer)"
fi
kill "${watcher_pid}" 2>/dev/null || true
watcher_pid=""
t0=${SECONDS}
if wait_for 300 workers_at_zero; then
  pass "scaled to zero" "no worker pods $((SECONDS - t0))s after delivery"
else
  fail "scaled to zero" "still $(worker_replicas) worker replicas 300s after delivery"
fi

# ---- 6. status and cleanup -----------------------------------------------------------------------
status_sent() {
  local sent
  sent="$("${kn[@]}" get emailqueue "${QUEUE}" --output 'jsonpath={.status.sent}' 2>/dev/null || true)"
  ((${sent:-0} >= E2E_EMAILS))
}
if wait_for 90 status_sent; then
  pass "status" "EmailQueue status.sent = $("${kn[@]}" get emailqueue "${QUEUE}" --output 'jsonpath={.status.sent}')"
else
  fail "status" "status.sent = '$("${kn[@]}" get emailqueue "${QUEUE}" --output 'jsonpath={.status.sent}')'"
fi
"${kn[@]}" delete emailqueue "${QUEUE}" --wait=true --timeout=180s >/dev/null
children_gone() { [[ -z "$("${kn[@]}" get "${CHILDREN[@]}" --ignore-not-found --output name 2>/dev/null)" ]]; }
if wait_for 180 children_gone; then
  pass "cleanup" "all ${#CHILDREN[@]} children deleted with the EmailQueue"
else
  fail "cleanup" "left behind: $("${kn[@]}" get "${CHILDREN[@]}" --ignore-not-found --output name | xargs)"
fi
claims="$("${kn[@]}" get pvc --selector "app.kubernetes.io/instance=${QUEUE}" --output name)"
if [[ -n "${claims}" ]]; then
  pass "volume kept" "${claims} kept (volumeReclaimPolicy Retain: mail is data)"
else
  fail "volume kept" "the Redis volume claim was deleted although volumeReclaimPolicy is Retain"
fi

if [[ "${E2E_KEEP}" == "1" ]]; then
  log "E2E_KEEP=1: namespace ${E2E_NAMESPACE} kept"
else
  "${k[@]}" delete namespace "${E2E_NAMESPACE}" --wait=false >/dev/null
fi
