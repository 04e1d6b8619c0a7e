{{/* Egress rules shared by several NetworkPolicies. */}}

{{- define "synaps.egressToDatabase" -}}
{{- if .Values.postgresql.enabled -}}
- to:
    - podSelector:
        matchLabels:
          {{- include "synaps.selector" (list . "postgresql") | nindent 10 }}
  ports:
    - {protocol: TCP, port: 5432}
{{- else -}}
- to:
    {{- range .Values.networkPolicy.externalDatabase.cidrs }}
    - ipBlock: {cidr: {{ . }}}
    {{- end }}
  ports:
    {{- range .Values.networkPolicy.externalDatabase.ports }}
    - {protocol: TCP, port: {{ int . }}}
    {{- end }}
{{- end -}}
{{- end -}}

{{- define "synaps.egressToNats" -}}
{{- if .Values.nats.enabled -}}
- to:
    - podSelector:
        matchLabels:
          {{- include "synaps.selector" (list . "nats") | nindent 10 }}
  ports:
    - {protocol: TCP, port: 4222}
{{- else -}}
- to:
    {{- range .Values.networkPolicy.externalNats.cidrs }}
    - ipBlock: {cidr: {{ . }}}
    {{- end }}
  ports:
    {{- range .Values.networkPolicy.externalNats.ports }}
    - {protocol: TCP, port: {{ int . }}}
    {{- end }}
{{- end -}}
{{- end -}}

{{- define "synaps.egressToExternalHttps" -}}
- to:
    {{- range .Values.networkPolicy.externalHttps.cidrs }}
    - ipBlock: {cidr: {{ . }}}
    {{- end }}
  ports:
    {{- range .Values.networkPolicy.externalHttps.ports }}
    - {protocol: TCP, port: {{ int . }}}
    {{- end }}
{{- end -}}
