"""Talking to the Kubernetes API: read, create-once, server-side apply, delete, discovery.

Uses the ``kubernetes`` client's configuration (loaded by the operator's login handler,
in-cluster or from kubeconfig) and its transport, called in a thread so that the event loop
never blocks. Children are written with server-side apply (``fieldManager=emailqueue-operator``,
forced): idempotent, a field removed from a render is removed from the object, and fields
owned by others (KEDA's replica count, defaults) are left alone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.client import ApiClient

FIELD_MANAGER = "emailqueue-operator"

#: The kinds the operator reads or writes, and their resource (plural) names.
PLURALS: dict[str, str] = {
    "Secret": "secrets",
    "ConfigMap": "configmaps",
    "Service": "services",
    "ServiceAccount": "serviceaccounts",
    "StatefulSet": "statefulsets",
    "Deployment": "deployments",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "NetworkPolicy": "networkpolicies",
    "ScaledObject": "scaledobjects",
    "TriggerAuthentication": "triggerauthentications",
}

Obj = dict[str, Any]


class ApiError(Exception):
    """A Kubernetes API call failed; the message carries status and the server's reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def resource_path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{base}/namespaces/{namespace}/{PLURALS[kind]}"
    return f"{path}/{name}" if name else path


class Kube:
    """A thin async wrapper over the API; one per reconciliation (it owns a connection pool)."""

    def __init__(self) -> None:
        self._client = ApiClient()

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        serialized = self._client.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._client.call_api(*serialized, _request_timeout=30)
        raw = response.read()  # type: ignore[no-untyped-call]
        data = json.loads(raw) if raw else None
        return int(response.status), data

    async def request(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> tuple[int, Any]:
        return await asyncio.to_thread(self._call, method, path, query, body, content_type)

    @staticmethod
    def _raise(status: int, data: Any) -> None:
        if status >= 300:
            message = data.get("message", "") if isinstance(data, dict) else str(data)
            raise ApiError(status, message)

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        status, data = await self.request("GET", resource_path(api_version, kind, namespace, name))
        if status == 404:
            return None
        self._raise(status, data)
        return dict(data)

    async def create(self, obj: Obj) -> Obj | None:
        """Create ``obj``; None if it already exists (the existing object is left untouched)."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta["namespace"])
        status, data = await self.request("POST", path, [("fieldManager", FIELD_MANAGER)], obj, "application/json")
        if status == 409:
            return None
        self._raise(status, data)
        return dict(data)

    async def apply(self, obj: Obj) -> Obj:
        """Server-side apply: create or update ``obj`` to exactly what was rendered."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        status, data = await self.request("PATCH", path, query, obj, "application/apply-patch+yaml")
        self._raise(status, data)
        return dict(data)

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete (background propagation); False if it was not there."""
        path = resource_path(api_version, kind, namespace, name)
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        status, data = await self.request("DELETE", path, None, body, "application/json")
        if status == 404:
            return False
        self._raise(status, data)
        return True

    async def serves(self, group_version: str, *plurals: str) -> bool:
        """Whether the API serves these resources of ``group_version`` (discovery, no RBAC needed)."""
        status, data = await self.request("GET", f"/apis/{group_version}")
        if status == 404:
            return False
        self._raise(status, data)
        names = {r.get("name") for r in (data or {}).get("resources", [])}
        return all(p in names for p in plurals)


async def apply_children(kube: Kube, objs: list[Obj], owner: Mapping[str, Any]) -> None:
    """Adopt (owner reference, namespace) and server-side apply each child, in order."""
    kopf.adopt(objs, owner=owner)  # type: ignore[arg-type]
    for obj in objs:
        await kube.apply(obj)


async def delete_children(kube: Kube, namespace: str, refs: list[tuple[str, str, str]]) -> None:
    for api_version, kind, name in refs:
        await kube.delete(api_version, kind, namespace, name)


async def delete_owned_children(kube: Kube, namespace: str, owner_uid: str, refs: list[tuple[str, str, str]]) -> None:
    """Delete each child that exists and is owned by ``owner_uid``; leave anything else alone."""
    for api_version, kind, name in refs:
        obj = await kube.get(api_version, kind, namespace, name)
        owners = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
        if any(ref.get("uid") == owner_uid for ref in owners):
            await kube.delete(api_version, kind, namespace, name)
