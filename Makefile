# emailqueue — every target creates/uses .venv and installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

.PHONY: install
install: $(STAMP) ## create .venv and install the package with dev tools

.PHONY: demo
demo: $(STAMP) ## run the whole thing locally: Redis, SMTP sink, 2 workers, a batch of email
	$(PY) -m emailqueue demo

.PHONY: test
test: $(STAMP) ## run the test suite (starts real Redis/Valkey and SMTP servers itself)
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: lint
lint: $(STAMP) ## ruff, mypy --strict, and the cluster lint (hack/lint-cluster.sh)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	hack/lint-cluster.sh

.PHONY: lint-cluster
lint-cluster: $(STAMP) ## hadolint, shellcheck, yamllint, helm lint, kubernetes-validate, checkov, CRD copies
	hack/lint-cluster.sh

.PHONY: dashboard
dashboard: $(STAMP) ## the web dashboard on http://127.0.0.1:8000 (EMAILQUEUE_REDIS_URL, EMAILQUEUE_DASHBOARD_TOKEN)
	$(PY) -m emailqueue dashboard

.PHONY: screenshots
screenshots: $(STAMP) ## retake the dashboard screenshots in docs/img/ (needs /usr/bin/chromium)
	$(PY) -m tests.dashboard.screenshots

.PHONY: bench
bench: $(STAMP) ## benchmarks vs Celery, arq and a bare asyncio loop (BENCH_ARGS=--quick); needs /usr/sbin/smtp-sink
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/run.py $(BENCH_ARGS)

.PHONY: bench-example
bench-example: $(STAMP) ## the password-reset example: endpoint p50/p99, SMTP inline vs emailqueue (BENCH_ARGS=--quick)
	$(PY) bench/password_reset.py $(BENCH_ARGS)

.PHONY: soak
soak: $(STAMP) ## the 100k-message chaos soak (kills workers, restarts Redis, breaks SMTP; counts every id)
	$(PY) -m tests.soak --n 100000 --rate 800

.PHONY: operator-run
operator-run: $(STAMP) ## run the operator against the current kubeconfig (kind); applies the CRD first
	kubectl apply -f manifests/crd/
	EMAILQUEUE_OPERATOR_LOG_FORMAT=plain EMAILQUEUE_OPERATOR_LIVENESS_PORT=0 $(PY) -m emailqueue_operator

.PHONY: images
images: $(STAMP) ## build the worker and operator images (Docker; PUSH=1 pushes)
	hack/build-images.sh

.PHONY: kind-up
kind-up: $(STAMP) ## kind cluster + KEDA + images built and loaded + the operator chart
	hack/kind-up.sh

.PHONY: e2e
e2e: $(STAMP) ## end to end on the kind cluster: an autoscaled queue delivers a batch
	hack/e2e.sh

.PHONY: kind-down
kind-down: ## delete the kind cluster
	hack/kind-down.sh

.PHONY: sync-crd
sync-crd: $(STAMP) ## copy the EmailQueue CRD from its source into the chart and manifests/
	$(PY) hack/sync-crd.py

.PHONY: lock-images
lock-images: $(STAMP) ## re-lock the images' dependencies (requirements/*.txt; needs PyPI)
	hack/lock-images.sh

.PHONY: fmt
fmt: $(STAMP) ## format the code and apply safe lint fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: clean
clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
