{{/*
The operator's permissions, verb by verb; the same rules as manifests/rbac/clusterrole.yaml
(tests/chart check that they stay equal). Used by the ClusterRole, or by one Role per
watched namespace.

Not here, on purpose: list/watch of any child (children are read by name and written with
server-side apply); customresourcedefinitions and namespaces (kopf's cluster scanning is
off); pods and persistentvolumeclaims (never touched); update/PUT (every write is a patch);
delete of core/apps children but the dashboard's (they go with their EmailQueue through
owner references);
API discovery (allowed to every authenticated user by system:discovery).
*/}}
{{- define "emailqueue-operator.rules" -}}
# kopf lists and watches EmailQueues, and patches them to keep its finalizer and its
# progress annotations (emailqueue.dev/*).
- apiGroups: [emailqueue.dev]
  resources: [emailqueues]
  verbs: [list, watch, patch]
# Conditions and queue figures go to the status subresource.
- apiGroups: [emailqueue.dev]
  resources: [emailqueues/status]
  verbs: [patch]
# get: the Redis password / external Redis URL; create: a managed Redis's password, once;
# patch: the copy of an external URL's credentials that KEDA's TriggerAuthentication reads.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, patch]
# Children written with server-side apply: patch, and create for the first apply.
- apiGroups: [""]
  resources: [configmaps, serviceaccounts]
  verbs: [create, patch]
# get + delete: the dashboard's Service when spec.dashboard.enabled is switched off (the
# operator deletes it only when it owns it).
- apiGroups: [""]
  resources: [services]
  verbs: [get, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [create, patch]
# get: ready replicas of Redis and of the workers, for status.
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, create, patch]
# delete: the dashboard's Deployment when spec.dashboard.enabled is switched off (only when
# the operator owns it).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, create, patch, delete]
# delete: spec.networkPolicy.enabled switched off.
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [create, patch, delete]
# get: KEDA's Ready condition, for status; delete: spec.autoscaling.enabled switched off.
- apiGroups: [keda.sh]
  resources: [scaledobjects]
  verbs: [get, create, patch, delete]
- apiGroups: [keda.sh]
  resources: [triggerauthentications]
  verbs: [create, patch, delete]
# kopf reports handler outcomes as Kubernetes events on the EmailQueue.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}
