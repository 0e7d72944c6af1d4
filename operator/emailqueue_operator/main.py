"""Entry point: ``emailqueue-operator`` / ``python -m emailqueue_operator``.

Runs kopf against the current kubeconfig or in-cluster service account, one replica
(standalone: no peering objects), JSON logs, /healthz on the liveness port.
"""

from __future__ import annotations

import kopf

from emailqueue_operator.config import OperatorConfig, load

PREFIX = "emailqueue.dev"


def configure(settings: kopf.OperatorSettings, cfg: OperatorConfig) -> None:
    """kopf settings: own annotation prefix and finalizer, watch timeouts, no cluster scanning."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    # Watch requests end server-side every few minutes and are re-established; a stuck
    # connection is noticed by the client timeout.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    # The resources are known: no need to list CRDs (and no RBAC for it).
    settings.scanning.disabled = True
    settings.posting.level = 20  # INFO and above become Kubernetes events
    settings.networking.request_timeout = 60


def run() -> None:
    """Run the operator until SIGTERM/SIGINT."""
    cfg = load()
    kopf.configure(
        verbose=cfg.verbose,
        log_format=kopf.LogFormat.JSON if cfg.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    import emailqueue_operator.handlers  # noqa: F401 - registers the handlers

    namespaces = cfg.namespace_list()
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=f"http://0.0.0.0:{cfg.liveness_port}/healthz" if cfg.liveness_port else None,
    )
