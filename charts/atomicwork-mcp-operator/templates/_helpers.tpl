{{/* Base name of every object. */}}
{{- define "awmcp.name" -}}
{{- default "atomicwork-mcp" .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name: the release name when it already says atomicwork-mcp, else
<release>-atomicwork-mcp. Short enough for the longest suffix (-controller-lease).
*/}}
{{- define "awmcp.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 44 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "awmcp.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 44 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 44 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "awmcp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "awmcp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: atomicwork-mcp
{{- end -}}

{{/* Selector labels of one part: include "awmcp.selectorLabels" (dict "ctx" . "component" "controller") */}}
{{- define "awmcp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "awmcp.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "awmcp.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* publicUrl, required, without a trailing slash. */}}
{{- define "awmcp.publicUrl" -}}
{{- $url := required "publicUrl is required: set it to the HTTPS base URL MCP clients reach the data plane at, e.g. --set publicUrl=https://mcp.example.com" .Values.publicUrl -}}
{{- trimSuffix "/" $url -}}
{{- end -}}

{{/* Environment shared by both parts. */}}
{{- define "awmcp.commonEnv" -}}
- name: PUBLIC_URL
  value: {{ include "awmcp.publicUrl" . | quote }}
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: RUST_LOG
  value: {{ .Values.logLevel | quote }}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- if .Values.catalogOverrides }}
- name: ATOMICWORK_MCP_CATALOG
  value: /etc/atomicwork-mcp/catalog.yaml
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by both parts: include "awmcp.podSpecCommon" (dict "ctx" . "component" "dataplane") */}}
{{- define "awmcp.podSpecCommon" -}}
{{- $ctx := .ctx -}}
{{- with $ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $ctx.Values.podSecurityContext | nindent 2 }}
{{- with $ctx.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $ctx.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
affinity:
{{- if $ctx.Values.affinity }}
  {{- toYaml $ctx.Values.affinity | nindent 2 }}
{{- else }}
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "awmcp.selectorLabels" . | nindent 14 }}
{{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 16Mi
{{- if $ctx.Values.catalogOverrides }}
  - name: catalog
    configMap:
      name: {{ include "awmcp.fullname" $ctx }}-catalog
{{- end }}
{{- end -}}

{{/*
The data plane pods' terminationGracePeriodSeconds: the request deadline plus 30 s for
the drain (the last answers written, connections closed, the process ended).
*/}}
{{- define "awmcp.dataplaneGracePeriod" -}}
{{- add (int .Values.dataplane.requestTimeoutSeconds) 30 -}}
{{- end -}}

{{- define "awmcp.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.catalogOverrides }}
- name: catalog
  mountPath: /etc/atomicwork-mcp
  readOnly: true
{{- end }}
{{- end -}}

{{/* Pod annotations: the user's plus a checksum that restarts pods when the catalog changes. */}}
{{- define "awmcp.podAnnotations" -}}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- if .Values.catalogOverrides }}
checksum/catalog: {{ toYaml .Values.catalogOverrides | sha256sum }}
{{- end }}
{{- end -}}
