"""The EmailQueue spec as pydantic models, mirroring crd/emailqueue-crd.yaml field by field.

The CRD schema is what the API server validates and defaults; these models are what the
operator reads. Defaults are repeated here so that a spec read before defaulting (tests,
older objects) means the same; tests/operator/test_crd.py fails when the two drift apart.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from emailqueue.keys import validate_queue_name

API_GROUP = "emailqueue.dev"
API_VERSION = "v1alpha1"
KIND = "EmailQueue"
PLURAL = "emailqueues"

#: Environment variables the operator renders into the worker; spec.worker.env may not set them.
MANAGED_ENV = (
    "EMAILQUEUE_REDIS_URL",
    "EMAILQUEUE_REDIS_PASSWORD",
    "EMAILQUEUE_QUEUE",
    "MAILER_DSN",
    "MAILER_FROM_EMAIL",
    "MAILER_FROM_NAME",
    "EMAILQUEUE_CONCURRENCY",
    "EMAILQUEUE_MAX_RETRIES",
    "EMAILQUEUE_RETRY_DELAY_MS",
    "EMAILQUEUE_RETRY_MULTIPLIER",
    "EMAILQUEUE_RETRY_MAX_DELAY_MS",
    "EMAILQUEUE_CLAIM_IDLE_MS",
    "EMAILQUEUE_METRICS_PORT",
    "EMAILQUEUE_SHUTDOWN_GRACE_S",
    "EMAILQUEUE_LOG_FORMAT",
    "EMAILQUEUE_CONSUMER_NAME",
    "EMAILQUEUE_RATE_LIMIT",
    "EMAILQUEUE_DOMAIN_RATE_LIMITS",
    "EMAILQUEUE_RATE_PAUSE_MS",
    "EMAILQUEUE_STATUS_TTL_S",
    "EMAILQUEUE_SUPPRESS_HARD_BOUNCES",
    "EMAILQUEUE_DKIM_DOMAIN",
    "EMAILQUEUE_DKIM_SELECTOR",
    "EMAILQUEUE_DKIM_PRIVATE_KEY",
    "EMAILQUEUE_DKIM_PRIVATE_KEY_FILE",
)

#: A send rate as the worker parses it: COUNT/PERIOD with s, m, h or d, and an optional burst.
RATE_PATTERN = r"^[1-9][0-9]{0,8}/[smhd](:[1-9][0-9]{0,5})?$"
#: A DNS name (DKIM domain and selector, recipient domains of spec.delivery.domainRateLimits).
DNS_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?([.][a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"

Quantity = str | int


class InvalidSpec(ValueError):
    """The spec can never work (it skipped admission, or the CRD is older than the operator)."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class SecretKeyRef(_Model):
    """A key of a Secret in the EmailQueue's namespace."""

    name: str = Field(min_length=1)
    key: str = Field(min_length=1)


class Resources(_Model):
    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.requests:
            out["requests"] = dict(self.requests)
        if self.limits:
            out["limits"] = dict(self.limits)
        return out


def _redis_resources() -> Resources:
    return Resources(requests={"cpu": "100m", "memory": "128Mi"}, limits={"memory": "512Mi"})


def _worker_resources() -> Resources:
    return Resources(requests={"cpu": "100m", "memory": "128Mi"}, limits={"memory": "256Mi"})


class Storage(_Model):
    size: str = "1Gi"
    storage_class_name: str | None = None


class ManagedRedis(_Model):
    image: str = "docker.io/valkey/valkey:8.1-alpine"
    storage: Storage = Field(default_factory=Storage)
    resources: Resources = Field(default_factory=_redis_resources)
    maxmemory: str = "256mb"
    appendfsync: Literal["always", "everysec", "no"] = "everysec"
    volume_reclaim_policy: Literal["Retain", "Delete"] = "Retain"


class ExternalRedis(_Model):
    url_secret_ref: SecretKeyRef


class Redis(_Model):
    managed: ManagedRedis | None = None
    external: ExternalRedis | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Redis:
        if (self.managed is None) == (self.external is None):
            raise ValueError("spec.redis: set exactly one of managed or external")
        return self


class Smtp(_Model):
    dsn_secret_ref: SecretKeyRef
    from_email: str = Field(min_length=3)
    from_name: str = ""


class EnvVar(_Model):
    name: str = Field(min_length=1)
    value: str | None = None
    value_from: dict[str, Any] | None = None

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.value_from is not None:
            out["valueFrom"] = self.value_from
        else:
            out["value"] = self.value or ""
        return out


class Worker(_Model):
    image: str = "ghcr.io/emailqueue/emailqueue:0.1.0"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    concurrency: int = Field(16, ge=1, le=1024)
    resources: Resources = Field(default_factory=_worker_resources)
    min_replicas: int = Field(0, ge=0, le=1000)
    max_replicas: int = Field(10, ge=1, le=1000)
    backlog_per_replica: int = Field(100, ge=1)
    termination_grace_period_seconds: int = Field(60, ge=5, le=3600)
    claim_idle_ms: int = Field(120_000, ge=100)
    env: list[EnvVar] = Field(default_factory=list)

    @model_validator(mode="after")
    def _bounds(self) -> Worker:
        if self.min_replicas > self.max_replicas:
            raise ValueError("spec.worker: minReplicas must be less than or equal to maxReplicas")
        return self

    @property
    def shutdown_grace_s(self) -> int:
        """Time the worker gives in-flight sends on SIGTERM: the pod's grace minus a margin."""
        return max(self.termination_grace_period_seconds - 5, 1)


class Retry(_Model):
    max_retries: int = Field(3, ge=0, le=100)
    delay_ms: int = Field(1000, ge=0)
    multiplier: float = Field(2.0, ge=1.0, le=100.0)
    max_delay_ms: int = Field(0, ge=0)


class Autoscaling(_Model):
    enabled: bool = True
    polling_interval_seconds: int = Field(10, ge=1, le=3600)
    cooldown_seconds: int = Field(120, ge=0, le=86400)
    scale_down_stabilization_seconds: int = Field(60, ge=0, le=3600)
    activation_backlog: int = Field(0, ge=0)
    fallback_replicas: int = Field(1, ge=0, le=1000)


class NetworkPolicy(_Model):
    enabled: bool = True


class TokenSecretRef(SecretKeyRef):
    key: str = Field("token", min_length=1)


class SecretRef(_Model):
    """A whole Secret in the EmailQueue's namespace."""

    name: str = Field(min_length=1)


def _dashboard_resources() -> Resources:
    return Resources(requests={"cpu": "20m", "memory": "64Mi"}, limits={"memory": "192Mi"})


class Dashboard(_Model):
    enabled: bool = False
    read_only: bool = False
    token_secret_ref: TokenSecretRef | None = None
    basic_auth_secret_ref: SecretRef | None = None
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    resources: Resources = Field(default_factory=_dashboard_resources)

    @model_validator(mode="after")
    def _credentials(self) -> Dashboard:
        if self.enabled and self.token_secret_ref is None and self.basic_auth_secret_ref is None:
            raise ValueError(
                "spec.dashboard.enabled needs spec.dashboard.tokenSecretRef or spec.dashboard.basicAuthSecretRef"
            )
        return self


class DkimKeySecretRef(SecretKeyRef):
    key: str = Field("private-key", min_length=1)


class Dkim(_Model):
    domain: str = Field(min_length=1, max_length=253, pattern=DNS_NAME_PATTERN)
    selector: str = Field("emailqueue", min_length=1, max_length=253, pattern=DNS_NAME_PATTERN)
    private_key_secret_ref: DkimKeySecretRef


class DomainRateLimit(_Model):
    domain: str = Field(min_length=1, max_length=253, pattern=DNS_NAME_PATTERN)
    rate: str = Field(max_length=24, pattern=RATE_PATTERN)


class Delivery(_Model):
    rate_limit: str | None = Field(None, max_length=24, pattern=RATE_PATTERN)
    domain_rate_limits: list[DomainRateLimit] = Field(default_factory=list, max_length=100)
    slow_down_pause_seconds: int = Field(30, ge=0, le=86_400)
    status_ttl_seconds: int = Field(86_400, ge=0, le=31_536_000, alias="statusTTLSeconds")
    suppress_hard_bounces: bool = True
    dkim: Dkim | None = None

    @model_validator(mode="after")
    def _unique_domains(self) -> Delivery:
        domains = [d.domain for d in self.domain_rate_limits]
        if len(domains) != len(set(domains)):
            raise ValueError("spec.delivery.domainRateLimits: each domain may be listed once")
        return self

    def rendered_domain_rate_limits(self) -> str:
        """EMAILQUEUE_DOMAIN_RATE_LIMITS: ``gmail.com=20/s,yahoo.com=5/s``, in the spec's order."""
        return ",".join(f"{d.domain}={d.rate}" for d in self.domain_rate_limits)


class EmailQueueSpec(_Model):
    queue: str | None = None
    redis: Redis
    smtp: Smtp
    worker: Worker = Field(default_factory=Worker)
    retry: Retry = Field(default_factory=Retry)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    network_policy: NetworkPolicy = Field(default_factory=NetworkPolicy)
    dashboard: Dashboard = Field(default_factory=Dashboard)
    delivery: Delivery = Field(default_factory=Delivery)

    @model_validator(mode="after")
    def _check(self) -> EmailQueueSpec:
        if self.queue is not None:
            validate_queue_name(self.queue)
        if self.autoscaling.activation_backlog > 0 and self.worker.min_replicas < 1:
            raise ValueError("spec.autoscaling.activationBacklog above 0 needs spec.worker.minReplicas of at least 1")
        clashes = sorted({e.name for e in self.worker.env} & set(MANAGED_ENV))
        if clashes:
            raise ValueError(f"spec.worker.env must not set variables the operator manages: {', '.join(clashes)}")
        return self


class EmailQueue(BaseModel):
    """What the operator needs of one EmailQueue object: identity and spec."""

    model_config = ConfigDict(frozen=True)

    name: str
    namespace: str
    uid: str
    generation: int
    spec: EmailQueueSpec

    @property
    def queue(self) -> str:
        """The queue name in Redis: spec.queue, or the resource name."""
        return self.spec.queue or self.name

    @classmethod
    def from_body(cls, body: dict[str, Any] | Any) -> EmailQueue:
        meta = body["metadata"]
        try:
            spec = EmailQueueSpec.model_validate(dict(body.get("spec") or {}))
        except ValidationError as exc:
            problems = [
                f"spec.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" if err["loc"] else err["msg"]
                for err in exc.errors()
            ]
            raise InvalidSpec("; ".join(problems)) from None
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 0),
            spec=spec,
        )

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
