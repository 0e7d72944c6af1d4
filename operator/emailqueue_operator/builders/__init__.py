"""Pure render functions: an EmailQueue (+ context) in, plain Kubernetes objects out.

One module per child kind. Nothing here talks to a server; apply.py does that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emailqueue_operator.spec import EmailQueue

from .common import RedisEndpoint, RenderContext, dashboard_name, redis_name, worker_name
from .dashboard import dashboard_deployment, dashboard_service
from .networkpolicy import redis_networkpolicy
from .pdb import worker_pdb
from .redis_configmap import redis_configmap
from .redis_service import redis_service
from .redis_statefulset import redis_statefulset
from .scaledobject import KEDA_API_VERSION, scaled_object, trigger_authentication
from .serviceaccount import worker_serviceaccount
from .worker_deployment import worker_deployment
from .worker_service import worker_service

__all__ = ["Children", "RedisEndpoint", "RenderContext", "render"]

Obj = dict[str, Any]


@dataclass(frozen=True)
class Children:
    """What one EmailQueue should own, in apply order, and what it must not (to delete)."""

    #: Applied first: Redis, then the workers.
    core: list[Obj] = field(default_factory=list)
    #: Applied once the stream and its consumer group exist (KEDA reads them).
    autoscaling: list[Obj] = field(default_factory=list)
    #: (apiVersion, kind, name) of children that must not exist for this spec.
    absent: list[tuple[str, str, str]] = field(default_factory=list)
    #: Like ``absent``, but deleted only when this EmailQueue owns them: their names
    #: (<name>-dashboard) are ones a user may well have given objects of their own.
    owned_absent: list[tuple[str, str, str]] = field(default_factory=list)


def render(eq: EmailQueue, ctx: RenderContext) -> Children:
    core: list[Obj] = []
    absent: list[tuple[str, str, str]] = []
    owned_absent: list[tuple[str, str, str]] = []
    if eq.spec.redis.managed is not None:
        core += [redis_configmap(eq), redis_service(eq), redis_statefulset(eq)]
        if eq.spec.network_policy.enabled:
            core.append(redis_networkpolicy(eq, ctx))
        else:
            absent.append(("networking.k8s.io/v1", "NetworkPolicy", redis_name(eq)))
    core += [worker_serviceaccount(eq), worker_deployment(eq, ctx), worker_service(eq), worker_pdb(eq)]
    if eq.spec.dashboard.enabled:
        core += [dashboard_deployment(eq, ctx), dashboard_service(eq)]
    else:
        owned_absent = [("apps/v1", "Deployment", dashboard_name(eq)), ("v1", "Service", dashboard_name(eq))]

    autoscaling: list[Obj] = []
    keda = [scaled_object(eq, ctx.endpoint), trigger_authentication(eq, ctx.endpoint)]
    if ctx.keda_managed:
        autoscaling = [obj for obj in reversed(keda) if obj is not None]  # the auth before its user
        if keda[1] is None:
            absent.append((KEDA_API_VERSION, "TriggerAuthentication", worker_name(eq)))
    elif ctx.keda_installed:  # autoscaling switched off: the ScaledObject must go, or KEDA keeps scaling
        absent += [
            (KEDA_API_VERSION, "ScaledObject", worker_name(eq)),
            (KEDA_API_VERSION, "TriggerAuthentication", worker_name(eq)),
        ]
    return Children(core=core, autoscaling=autoscaling, absent=absent, owned_absent=owned_absent)
