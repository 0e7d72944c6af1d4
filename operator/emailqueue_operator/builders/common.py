"""Names, labels and the render context shared by every builder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from emailqueue_operator.spec import EmailQueue, SecretKeyRef

APP = "emailqueue"
MANAGED_BY = "emailqueue-operator"
#: Pods carrying this label with the EmailQueue's name as value may reach its managed Redis.
PRODUCER_LABEL = "emailqueue.dev/producer"
REDIS_PORT = 6379
METRICS_PORT = 8080
PASSWORD_KEY = "password"  # noqa: S105 - a Secret key name, not a password
USERNAME_KEY = "username"

REDIS = "redis"
WORKER = "worker"
DASHBOARD = "dashboard"
DASHBOARD_PORT = 8080


def redis_name(eq: EmailQueue) -> str:
    """StatefulSet, Service, ConfigMap and NetworkPolicy of a managed Redis."""
    return f"{eq.name}-redis"


def redis_secret_name(eq: EmailQueue) -> str:
    """The generated password of a managed Redis, or the credentials taken from an external URL."""
    return f"{eq.name}-redis-auth"


def worker_name(eq: EmailQueue) -> str:
    """Deployment, metrics Service, ServiceAccount, PodDisruptionBudget, ScaledObject, TriggerAuthentication."""
    return f"{eq.name}-worker"


def dashboard_name(eq: EmailQueue) -> str:
    """Deployment and Service of the web dashboard (spec.dashboard)."""
    return f"{eq.name}-dashboard"


def selector_labels(eq: EmailQueue, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP,
        "app.kubernetes.io/instance": eq.name,
        "app.kubernetes.io/component": component,
    }


def labels(eq: EmailQueue, component: str) -> dict[str, str]:
    return {**selector_labels(eq, component), "app.kubernetes.io/managed-by": MANAGED_BY}


def metadata(eq: EmailQueue, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": eq.namespace, "labels": labels(eq, component)}


@dataclass(frozen=True, slots=True)
class RedisEndpoint:
    """Where a queue's Redis is and where its credentials live; never the password itself."""

    host: str
    port: int
    db: int = 0
    tls: bool = False
    username: str | None = None
    #: The Secret key holding the password (workers and KEDA read it from there), if any.
    password_ref: SecretKeyRef | None = None
    #: External Redis: the Secret key holding the whole URL, which the workers read as is.
    url_ref: SecretKeyRef | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def scheme(self) -> str:
        return "rediss" if self.tls else "redis"

    @property
    def display(self) -> str:
        """The endpoint for status and logs: scheme, host, port, database; no credentials."""
        return f"{self.scheme}://{self.address}/{self.db}"

    @classmethod
    def managed(cls, eq: EmailQueue) -> RedisEndpoint:
        return cls(
            host=f"{redis_name(eq)}.{eq.namespace}.svc",
            port=REDIS_PORT,
            password_ref=SecretKeyRef(name=redis_secret_name(eq), key=PASSWORD_KEY),
        )

    @classmethod
    def external(cls, eq: EmailQueue, url: str) -> tuple[RedisEndpoint, str | None]:
        """Parse an external Redis URL; return the endpoint and the password found in it (if any).

        The password goes into the operator-owned Secret that KEDA reads; the endpoint only
        names that Secret.
        """
        assert eq.spec.redis.external is not None
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError("the external Redis URL must look like redis://[user:password@]host:port/db")
        path = parts.path.strip("/")
        try:
            db = int(path) if path else 0
        except ValueError:
            raise ValueError("the database of the external Redis URL must be a number") from None
        password = unquote(parts.password) if parts.password else None
        username = unquote(parts.username) if parts.username else None
        if username == "":
            username = None
        endpoint = cls(
            host=parts.hostname,
            port=parts.port or REDIS_PORT,
            db=db,
            tls=parts.scheme == "rediss",
            username=username,
            password_ref=SecretKeyRef(name=redis_secret_name(eq), key=PASSWORD_KEY) if password else None,
            url_ref=eq.spec.redis.external.url_secret_ref,
        )
        return endpoint, password


@dataclass(frozen=True, slots=True)
class RenderContext:
    """Everything a builder needs besides the EmailQueue itself."""

    endpoint: RedisEndpoint
    #: KEDA's CRDs are installed in the cluster.
    keda_installed: bool = False
    #: KEDA is installed and spec.autoscaling.enabled: KEDA owns the worker replica count.
    keda_managed: bool = False
    #: The operator's namespace (NetworkPolicy lets the operator reach Redis); "" = unknown.
    operator_namespace: str = ""
    #: KEDA's namespace (NetworkPolicy lets the KEDA operator poll Redis).
    keda_namespace: str = "keda"
