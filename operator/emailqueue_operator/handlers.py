"""The kopf handlers: a few lines each; the work is in reconcile.py.

Handlers never return results (kopf would write them into status, where a structural
schema drops them); they fill kopf's status patch. kopf keeps its progress in annotations
under emailqueue.dev/ (see main.configure).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from emailqueue_operator import config, reconcile
from emailqueue_operator.apply import ApiError
from emailqueue_operator.main import configure
from emailqueue_operator.spec import API_GROUP, API_VERSION, PLURAL, InvalidSpec
from emailqueue_operator.status import invalid_spec_status

Logger = logging.Logger | logging.LoggerAdapter[Any]
RESOURCE = (API_GROUP, API_VERSION, PLURAL)
#: Read once for the timer's interval; handlers re-read the settings on each call.
STARTUP_CONFIG = config.load()


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    configure(settings, config.load())


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # The kubernetes client's configuration (in-cluster or kubeconfig) is what apply.py uses too.
    return kopf.login_via_client(**kwargs)


@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
@kopf.on.resume(*RESOURCE)
async def reconcile_queue(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any) -> None:
    cfg = config.load()
    try:
        outcome = await reconcile.reconcile(body, cfg, logger)
    except InvalidSpec as exc:
        patch.status.update(invalid_spec_status(str(exc), body.get("status"), body["metadata"].get("generation", 0)))
        raise kopf.PermanentError(f"invalid spec: {exc}") from None
    except ApiError as exc:
        raise kopf.TemporaryError(f"Kubernetes API: {exc}", delay=cfg.retry_seconds) from None
    memo["keda_installed"] = outcome.keda_installed
    patch.status.update(outcome.status)
    if not outcome.converged:
        raise kopf.TemporaryError(outcome.problem, delay=cfg.retry_seconds)
    logger.info("Reconciled queue %s", body["metadata"]["name"])


@kopf.timer(*RESOURCE, interval=STARTUP_CONFIG.refresh_seconds, initial_delay=STARTUP_CONFIG.refresh_seconds)
async def refresh_queue(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any) -> None:
    cfg = config.load()
    try:
        outcome = await reconcile.refresh(body, cfg)
        if outcome.keda_installed != memo.get("keda_installed", outcome.keda_installed):
            logger.info("KEDA was %s: reconciling", "installed" if outcome.keda_installed else "removed")
            outcome = await reconcile.reconcile(body, cfg, logger)
            memo["keda_installed"] = outcome.keda_installed
    except InvalidSpec:
        return  # the change handler reported it; nothing to read until the spec is fixed
    except ApiError as exc:
        logger.warning("Kubernetes API: %s; status not refreshed", exc)
        return
    for note in outcome.notes:
        logger.info(note)
    patch.status.update(outcome.status)
