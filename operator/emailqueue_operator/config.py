"""The operator's own settings, read from ``EMAILQUEUE_OPERATOR_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorConfig(BaseSettings):
    """Settings of the operator process (not of a queue: those live in each EmailQueue)."""

    model_config = SettingsConfigDict(env_prefix="EMAILQUEUE_OPERATOR_", extra="ignore")

    namespaces: str = Field("", description="Comma-separated namespaces to watch; empty = all namespaces.")
    liveness_port: int = Field(8080, ge=0, le=65535, description="Port of the operator's /healthz; 0 disables it.")
    refresh_seconds: float = Field(15.0, gt=0, description="How often queue figures are read into status.")
    retry_seconds: float = Field(10.0, gt=0, description="Delay before a failed reconciliation is retried.")
    log_format: str = Field("json", description="json or plain.")
    verbose: bool = Field(False, description="Log at DEBUG level.")
    # Where the operator itself reaches a managed Redis. In the cluster the Service DNS name works;
    # for `make operator-run` on a laptop, port-forward the Service and set "127.0.0.1:6379".
    managed_redis_address: str = Field(
        "{service}.{namespace}.svc:6379",
        description="host:port of a managed Redis as seen from the operator; {service} and {namespace} are filled in.",
    )
    namespace: str = Field("", description="The operator's own namespace (downward API); NetworkPolicy lets it in.")
    keda_namespace: str = Field("keda", description="Namespace of the KEDA operator, which polls Redis.")

    def namespace_list(self) -> list[str]:
        return [ns.strip() for ns in self.namespaces.split(",") if ns.strip()]


def load() -> OperatorConfig:
    return OperatorConfig()
