{{/* Names and labels shared by every object of the chart. */}}

{{- define "ovfast.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, unless the release name already contains the chart name; 63 characters at most. */}}
{{- define "ovfast.fullname" -}}
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

{{- define "ovfast.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ovfast.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ovfast.labels" -}}
{{ include "ovfast.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Secret holding the API key: the user's, or the one this chart makes from apiKey.value. */}}
{{- define "ovfast.apiKeySecret" -}}
{{- if .Values.apiKey.existingSecret }}
{{- .Values.apiKey.existingSecret }}
{{- else }}
{{- printf "%s-api-key" (include "ovfast.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Where each TLS secret is mounted. */}}
{{- define "ovfast.tlsDir" -}}
/etc/ovfast/tls/{{ . }}
{{- end }}

{{/* An HTTP probe on the REST port; with REST client authentication (mutual TLS) the kubelet has no
     client certificate, so the probe falls back to a TCP connect. */}}
{{- define "ovfast.httpProbe" -}}
{{- $rest := .root.Values.tls.rest }}
{{- if and $rest.enabled $rest.clientAuth }}
tcpSocket:
  port: http
{{- else }}
httpGet:
  path: {{ .path }}
  port: http
  scheme: {{ ternary "HTTPS" "HTTP" $rest.enabled }}
{{- end }}
{{- end }}
