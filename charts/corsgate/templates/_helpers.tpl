{{/*
Names. With the release name "corsgate" every object is called "corsgate"
(plus a suffix), matching the kustomize build in config/default.
*/}}
{{- define "corsgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "corsgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "corsgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable for the life of a release (Deployment selectors are immutable). */}}
{{- define "corsgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "corsgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "corsgate.labels" -}}
{{ include "corsgate.selectorLabels" . }}
app.kubernetes.io/version: {{ include "corsgate.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: corsgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "corsgate.chart" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "corsgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "corsgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "corsgate.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* A digest pins the image; otherwise the tag (default: appVersion). */}}
{{- define "corsgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "corsgate.imageTag" .) }}
{{- end }}
{{- end }}

{{/* Where the gRPC TLS Secret is mounted; the file names are cert-manager's. */}}
{{- define "corsgate.tlsDir" -}}
/etc/corsgate/grpc-tls
{{- end }}

{{/*
Cross-field checks that JSON Schema cannot express. Each message says what to
write instead.
*/}}
{{- define "corsgate.validate" -}}
{{- if and .Values.grpc.tls.enabled (not .Values.grpc.tls.secretName) }}
{{- fail "grpc.tls.enabled is true but grpc.tls.secretName is empty: name the Secret (type kubernetes.io/tls, keys tls.crt and tls.key, e.g. a cert-manager Certificate's spec.secretName)" }}
{{- end }}
{{- if and .Values.termination.preStopSleepSeconds (le (int .Values.termination.gracePeriodSeconds) (int .Values.termination.preStopSleepSeconds)) }}
{{- fail (printf "termination.gracePeriodSeconds (%d) must be larger than termination.preStopSleepSeconds (%d): the pod needs time after the sleep to finish the ext_proc streams still open" (int .Values.termination.gracePeriodSeconds) (int .Values.termination.preStopSleepSeconds)) }}
{{- end }}
{{- with .Values.podDisruptionBudget }}
{{- if .enabled }}
{{- $hasMin := not (kindIs "invalid" .minAvailable) }}
{{- $hasMax := not (kindIs "invalid" .maxUnavailable) }}
{{- if and $hasMin $hasMax }}
{{- fail "podDisruptionBudget: set either minAvailable or maxUnavailable, not both (set the other to null)" }}
{{- end }}
{{- if not (or $hasMin $hasMax) }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable (or podDisruptionBudget.enabled: false)" }}
{{- end }}
{{- if and $hasMin (not (kindIs "string" .minAvailable)) (not $.Values.autoscaling.enabled) (ge (int .minAvailable) (int $.Values.replicaCount)) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) is not below replicaCount (%d): no pod could ever be evicted and every node drain would hang; lower it or use maxUnavailable" (int .minAvailable) (int $.Values.replicaCount)) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%d) is larger than autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled: true (there is nothing to scrape otherwise)" }}
{{- end }}
{{- end }}
