{{/*
The chart's name. Fixed on purpose (no nameOverride): the NetworkPolicies that the operator
renders around each managed Redis let in pods labelled
app.kubernetes.io/name=emailqueue-operator, and this value is that label.
*/}}
{{- define "emailqueue-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A default fully qualified app name, truncated at 63 characters (some Kubernetes name
fields are limited to that by the DNS naming spec). A release name that already contains
the chart name is used as is.
*/}}
{{- define "emailqueue-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "emailqueue-operator.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, as used by the helm.sh/chart label.
*/}}
{{- define "emailqueue-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "emailqueue-operator.labels" -}}
helm.sh/chart: {{ include "emailqueue-operator.chart" . }}
{{ include "emailqueue-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: emailqueue
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "emailqueue-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "emailqueue-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The name of the service account to use.
*/}}
{{- define "emailqueue-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "emailqueue-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image: repository@digest when a digest is given, else repository:tag with
the tag defaulting to the chart's appVersion.
*/}}
{{- define "emailqueue-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The namespace of the first EmailQueue created from values.
*/}}
{{- define "emailqueue-operator.emailQueueNamespace" -}}
{{- default .Release.Namespace .Values.emailQueue.namespace }}
{{- end }}

{{/*
Checks across values that the JSON schema cannot express. Every message is collected and
the release fails once, listing them all (as bitnami's charts do).
*/}}
{{- define "emailqueue-operator.validateValues" -}}
{{- $errors := list }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- $errors = append $errors "metrics.serviceMonitor.enabled needs metrics.service.enabled: the ServiceMonitor selects the metrics Service" }}
{{- end }}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) }}
{{- $errors = append $errors "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false (the operator needs its own identity, not the namespace's default)" }}
{{- end }}
{{- if and .Values.emailQueue.create (gt (len .Values.watchNamespaces) 0) (not (has (include "emailqueue-operator.emailQueueNamespace" .) .Values.watchNamespaces)) }}
{{- $errors = append $errors (printf "emailQueue.namespace %q is not in watchNamespaces %v: the operator would never reconcile the EmailQueue" (include "emailqueue-operator.emailQueueNamespace" .) .Values.watchNamespaces) }}
{{- end }}
{{- if $errors }}
{{- fail (printf "\n\nInvalid values for the emailqueue-operator chart:\n  - %s\n" (join "\n  - " $errors)) }}
{{- end }}
{{- end }}
