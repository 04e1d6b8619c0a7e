{{/* The Hasura metadata files shipped in the chart (a link to deploy/hasura/metadata). */}}
{{- define "synaps.hasuraMetadataFiles" -}}
files/hasura-metadata/**
{{- end -}}

{{/* ConfigMap keys cannot hold "/": databases/default/x.yaml becomes databases__default__x.yaml. */}}
{{- define "synaps.hasuraMetadataKey" -}}
{{- trimPrefix "files/hasura-metadata/" . | replace "/" "__" -}}
{{- end -}}
