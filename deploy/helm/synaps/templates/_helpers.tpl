{{/* Shared names, labels and pod settings. */}}

{{- define "synaps.namespace" -}}
{{- .Values.namespace | default .Release.Namespace -}}
{{- end -}}

{{- define "synaps.labels" -}}
app.kubernetes.io/name: synaps
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: include "synaps.selector" (list . "control-api") */}}
{{- define "synaps.selector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: synaps
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "synaps.componentLabels" -}}
{{ include "synaps.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "synaps.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "synaps.workerName" -}}
{{- printf "synaps-%s" .Values.worker.name -}}
{{- end -}}

{{/* Restricted pod security (Pod Security Standards "restricted"), container level. */}}
{{- define "synaps.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Pod level; the argument is the component's user/group/fsGroup map. */}}
{{- define "synaps.podSecurityContext" -}}
runAsNonRoot: true
{{ toYaml . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "synaps.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Secrets: the chart's own unless an existing one is named. */}}
{{- define "synaps.authSecret" -}}
{{- .Values.auth.existingSecret | default "synaps-auth" -}}
{{- end -}}
{{- define "synaps.databaseSecret" -}}
{{- .Values.database.existingSecret | default "synaps-database" -}}
{{- end -}}
{{- define "synaps.providersSecret" -}}
{{- .Values.providers.existingSecret | default "synaps-providers" -}}
{{- end -}}
{{- define "synaps.objectStoreSecret" -}}
{{- .Values.objectStore.existingSecret | default "synaps-object-store" -}}
{{- end -}}

{{/* A value kept across upgrades: the given one, else the one in the live Secret, else new. */}}
{{- define "synaps.persistentSecretValue" -}}
{{- $root := index . 0 -}}
{{- $secret := index . 1 -}}
{{- $key := index . 2 -}}
{{- $given := index . 3 -}}
{{- if $given -}}
{{- $given -}}
{{- else -}}
{{- $live := lookup "v1" "Secret" (include "synaps.namespace" $root) $secret -}}
{{- if and $live $live.data (hasKey $live.data $key) -}}
{{- index $live.data $key | b64dec -}}
{{- else -}}
{{- randAlphaNum 40 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "synaps.natsUrl" -}}
{{- if .Values.nats.enabled -}}
nats://synaps-nats:4222
{{- else -}}
{{- .Values.externalNats.url -}}
{{- end -}}
{{- end -}}

{{- define "synaps.objectStoreUrl" -}}
{{- .Values.objectStore.url | default "file:///var/lib/synaps/objects" -}}
{{- end -}}

{{- define "synaps.usesFileStore" -}}
{{- if not .Values.objectStore.url }}true{{ end -}}
{{- end -}}

{{/* Environment shared by every Synaps process. */}}
{{- define "synaps.commonEnv" -}}
- name: SYNAPS_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "synaps.databaseSecret" . }}
      key: SYNAPS_DATABASE_URL
- name: SYNAPS_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end -}}

{{/* NATS and object store, for the API and workers. */}}
{{- define "synaps.runtimeEnv" -}}
{{- if and (not .Values.nats.enabled) .Values.externalNats.existingSecret }}
- name: SYNAPS_NATS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalNats.existingSecret }}
      key: {{ .Values.externalNats.existingSecretKey }}
{{- else }}
- name: SYNAPS_NATS_URL
  value: {{ required "externalNats.url (or externalNats.existingSecret) is required when nats.enabled=false" (include "synaps.natsUrl" .) | quote }}
{{- end }}
{{- if and .Values.nats.enabled .Values.nats.cluster.enabled }}
- name: SYNAPS_NATS_STREAM_REPLICAS
  value: {{ min 3 .Values.nats.cluster.replicas | quote }}
{{- end }}
- name: SYNAPS_OBJECT_STORE
  value: {{ include "synaps.objectStoreUrl" . | quote }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "synaps.objectStoreSecret" . }}
      key: AWS_ACCESS_KEY_ID
      optional: true
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "synaps.objectStoreSecret" . }}
      key: AWS_SECRET_ACCESS_KEY
      optional: true
{{- end -}}

{{/* The migration hook phases (see values.yaml, migrations.hook). */}}
{{- define "synaps.migrationHook" -}}
{{- if .Values.migrations.hook -}}
{{- .Values.migrations.hook -}}
{{- else if and (not .Values.postgresql.enabled) .Values.database.existingSecret -}}
pre-install,pre-upgrade
{{- else -}}
post-install,pre-upgrade
{{- end -}}
{{- end -}}

{{/* Labels of one alert: include "synaps.alertLabels" (list .Values.monitoring.prometheusRule severity) */}}
{{- define "synaps.alertLabels" -}}
severity: {{ index . 1 | quote }}
{{- with (index . 0).alertLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
