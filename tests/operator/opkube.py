"""kmock's Kubernetes emulator, taught the parts of an API server the operator relies on.

kmock stores objects "as is" and runs no controllers (by design: "inherit and implement
for your cases"). This subclass adds, as a real API server and controller manager would:

- object metadata: uid, creationTimestamp, resourceVersion, generation (bumped on spec change);
- admission of EmailQueues against the CRD: defaults, schema, CEL rules (422 when invalid);
- the status subresource: /status writes only status, the main resource never writes it,
  and a structural schema prunes unknown status fields;
- server-side apply (application/apply-patch+yaml) creating missing objects;
- the garbage collector: objects whose owners are all gone are deleted (background);
- the StatefulSet controller's volume claims: data-<sts>-0, owned by the StatefulSet only
  when its persistentVolumeClaimRetentionPolicy.whenDeleted is Delete.

It is not a real API server: merge semantics stay kmock's (dicts merge, lists replace).
"""

from __future__ import annotations

import base64
import copy
import datetime
import itertools
import uuid
from typing import Any

import aiohttp.web
import kmock
from crdvalidate import Invalid, admit, prune_status
from kmock._internal import dicts
from ophelpers import EQ_SCHEMA

EMAILQUEUES = kmock.resource("emailqueue.dev", "v1alpha1", "emailqueues")
PVCS = kmock.resource("", "v1", "persistentvolumeclaims")
STATEFULSETS = kmock.resource("apps", "v1", "statefulsets")
SECRETS = kmock.resource("", "v1", "secrets")
ALL_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}

CORE: dict[str, tuple[str, set[str]]] = {
    "v1/secrets": ("Secret", set()),
    "v1/configmaps": ("ConfigMap", set()),
    "v1/services": ("Service", {"status"}),
    "v1/serviceaccounts": ("ServiceAccount", set()),
    "v1/persistentvolumeclaims": ("PersistentVolumeClaim", {"status"}),
    "v1/events": ("Event", set()),
    "apps/v1/statefulsets": ("StatefulSet", {"status", "scale"}),
    "apps/v1/deployments": ("Deployment", {"status", "scale"}),
    "policy/v1/poddisruptionbudgets": ("PodDisruptionBudget", {"status"}),
    "networking.k8s.io/v1/networkpolicies": ("NetworkPolicy", set()),
    "emailqueue.dev/v1alpha1/emailqueues": ("EmailQueue", {"status"}),
}
#: Cluster-scoped kinds every cluster serves; kopf's discovery waits for them.
CLUSTER: dict[str, str] = {
    "v1/namespaces": "Namespace",
    "apiextensions.k8s.io/v1/customresourcedefinitions": "CustomResourceDefinition",
}
KEDA = {
    "keda.sh/v1alpha1/scaledobjects": ("ScaledObject", {"status"}),
    "keda.sh/v1alpha1/triggerauthentications": ("TriggerAuthentication", {"status"}),
}


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiServer(kmock.KubernetesEmulator):
    """See the module docstring."""

    _versions = itertools.count(1)

    def declare(self, resources: dict[str, tuple[str, set[str]]]) -> None:
        for key, (kind, subresources) in resources.items():
            self.resources[key] = kmock.ResourceInfo(
                kind=kind,
                namespaced=True,
                verbs=set(ALL_VERBS),
                subresources=set(subresources),
            )

    def declare_cluster_kinds(self) -> None:
        for key, kind in CLUSTER.items():
            self.resources[key] = kmock.ResourceInfo(kind=kind, namespaced=False, verbs=set(ALL_VERBS))

    def install_keda(self) -> None:
        self.declare(KEDA)

    def read(self, resource: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
        key = (kmock.resource(resource), namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return copy.deepcopy(self.objects[key].raw)

    async def inject(self, resource: str, obj: dict[str, Any]) -> None:
        """Store an object as is, skipping admission (as if written before the CRD's rules existed)."""
        res = kmock.resource(resource)
        self.objects[res, obj["metadata"]["namespace"], obj["metadata"]["name"]] = obj
        await self._put(res, "ADDED", obj)

    # -- request handling ------------------------------------------------------------------

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.resource is not None and isinstance(request.data, dict):
            try:
                self._prepare(request)
            except Invalid as exc:
                raise kmock.KubernetesError(status=422, reason="Invalid", message=str(exc)) from None
        response = await super()._handle(request)
        await self._controllers()
        return response

    def _key(self, request: kmock.Request) -> tuple[Any, str | None, str | None]:
        meta = request.data.get("metadata") or {}
        return (request.resource, request.namespace or meta.get("namespace"), request.name or meta.get("name"))

    def _current(self, key: tuple[Any, str | None, str | None]) -> dict[str, Any] | None:
        if key in self.objects and not self.objects[key].deleted:
            return dict(self.objects[key].raw)
        return None

    def _prepare(self, request: kmock.Request) -> None:
        data: dict[str, Any] = request.data
        key = self._key(request)
        meta = data.setdefault("metadata", {})
        if request.action == kmock.action.CREATE:
            self._new_metadata(meta, key[1])
            data.pop("status", None)
            if request.resource == EMAILQUEUES:
                data.update(admit(EQ_SCHEMA, data))
            self._defaults(request.resource, data)
            return
        if request.action != kmock.action.UPDATE:
            return
        current = self._current(key)
        if current is None and "apply-patch" in request.headers.get("Content-Type", ""):
            # Server-side apply of a missing object creates it.
            self._new_metadata(meta, key[1])
            self._defaults(request.resource, data)
            self.objects[key] = {"metadata": copy.deepcopy(meta)}
            current = self._current(key)
        if current is None:
            return
        if request.subresource == "status":
            for field in [f for f in data if f not in ("status", "metadata")]:
                del data[field]
            data["metadata"] = {}
        else:
            data.pop("status", None)
            self._normalize(request.resource, data)
        if request.resource == EMAILQUEUES and "status" in data:
            data["status"] = prune_status(EQ_SCHEMA, data["status"])
        merged = dict(dicts.patch_dict(current, data))
        if request.resource == EMAILQUEUES and request.subresource is None and "spec" in data:
            data["spec"] = admit(EQ_SCHEMA, merged, old=current)["spec"]
            merged = dict(dicts.patch_dict(current, data))
        meta = data.setdefault("metadata", {})
        if merged.get("spec") != current.get("spec"):
            meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        meta["resourceVersion"] = str(next(self._versions))

    def _new_metadata(self, meta: dict[str, Any], namespace: str | None) -> None:
        meta.setdefault("namespace", namespace)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["generation"] = 1
        meta["resourceVersion"] = str(next(self._versions))

    @classmethod
    def _defaults(cls, resource: Any, data: dict[str, Any]) -> None:
        if resource == kmock.resource("apps", "v1", "deployments"):
            data.setdefault("spec", {}).setdefault("replicas", 1)
        cls._normalize(resource, data)

    @staticmethod
    def _normalize(resource: Any, data: dict[str, Any]) -> None:
        if resource == SECRETS and "stringData" in data:  # the API server stores stringData as data
            strings = data.pop("stringData") or {}
            data.setdefault("data", {}).update({k: base64.b64encode(v.encode()).decode() for k, v in strings.items()})

    # -- "controllers" -----------------------------------------------------------------------

    async def _put(self, resource: Any, event: str, obj: dict[str, Any]) -> None:
        await self._buses[resource].put({"type": event, "object": obj})

    async def _controllers(self) -> None:
        await self._statefulset_claims()
        await self._garbage_collect()

    async def _statefulset_claims(self) -> None:
        for (resource, namespace, name), obj in list(self.objects.items()):
            if resource != STATEFULSETS or obj.deleted:
                continue
            sts = obj.raw
            for template in sts.get("spec", {}).get("volumeClaimTemplates", []):
                claim = f"{template['metadata']['name']}-{name}-0"
                key = (PVCS, namespace, claim)
                if self._current(key) is not None:
                    continue
                meta: dict[str, Any] = {
                    "name": claim,
                    "namespace": namespace,
                    "labels": dict(template["metadata"].get("labels", {})),
                }
                self._new_metadata(meta, namespace)
                policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy", {})
                if policy.get("whenDeleted") == "Delete":
                    meta["ownerReferences"] = [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "StatefulSet",
                            "name": name,
                            "uid": sts["metadata"]["uid"],
                            "controller": True,
                        }
                    ]
                pvc = {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": meta,
                    "spec": copy.deepcopy(template["spec"]),
                }
                self.objects[key] = pvc
                await self._put(PVCS, "ADDED", pvc)

    async def _garbage_collect(self) -> None:
        while True:
            live = {obj.raw["metadata"].get("uid") for obj in self.objects.values() if not obj.deleted}
            orphans = [
                (key, obj)
                for key, obj in self.objects.items()
                if not obj.deleted
                and (refs := obj.raw["metadata"].get("ownerReferences"))
                and not any(ref.get("uid") in live for ref in refs)
            ]
            if not orphans:
                return
            for (resource, _, _), obj in orphans:
                raw = obj.raw
                obj.delete()
                await self._put(resource, "DELETED", raw)
