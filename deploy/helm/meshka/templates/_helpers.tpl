{{/*
The chart's name, or nameOverride.
*/}}
{{- define "meshka.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of the release's objects: fullnameOverride, else the release
name when it holds the chart's name, else both. The headless Service adds
"-headless", so this stays within 54 characters.
*/}}
{{- define "meshka.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The headless Service: the pods' stable DNS names and the gossip seed.
*/}}
{{- define "meshka.headless" -}}
{{- printf "%s-headless" (include "meshka.fullname" .) }}
{{- end }}

{{/*
Where the release's Services live in DNS: NAMESPACE.svc.DOMAIN.
*/}}
{{- define "meshka.svcDomain" -}}
{{- printf "%s.svc.%s" .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{- define "meshka.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "meshka.labels" -}}
helm.sh/chart: {{ include "meshka.chart" . }}
{{ include "meshka.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that pick the release's pods.
*/}}
{{- define "meshka.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshka.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "meshka.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
meshka.yaml (docs/configuration.md). ${NAME} references are expanded by
meshka from the container's environment when it reads the file: POD_NAME
and POD_IP come from the downward API. node.id is not here: it is
--node-id, the pod's ordinal. .Values.config is merged over the rest.
*/}}
{{- define "meshka.config" -}}
{{- $headless := include "meshka.headless" . }}
{{- $domain := include "meshka.svcDomain" . }}
{{- $kafka := int .Values.kafka.port }}
{{- $gossip := int .Values.cluster.gossipPort }}
{{- $remote := int .Values.cluster.remotePort }}
{{- $cfg := dict }}
{{- $_ := set $cfg "node" (dict
      "listen" (printf "0.0.0.0:%d" $kafka)
      "advertise" (printf "${POD_NAME}.%s.%s:%d" $headless $domain $kafka)) }}
{{- $_ = set $cfg "cluster" (dict
      "name" .Values.cluster.name
      "bind" (printf "0.0.0.0:%d" $gossip)
      "advertise_bind" (printf "${POD_IP}:%d" $gossip)
      "join" (list (printf "%s.%s:%d" $headless $domain $gossip))
      "remote" (printf "0.0.0.0:%d" $remote)
      "advertise_remote" (printf "${POD_IP}:%d" $remote)) }}
{{- $_ = set $cfg "upstream" (dict "brokers" .Values.upstream.brokers) }}
{{- $_ = set $cfg "admin" (dict "listen" (printf "0.0.0.0:%d" (int .Values.admin.port))) }}
{{- $_ = set $cfg "log" (dict "level" .Values.log.level "format" .Values.log.format) }}
{{- if .Values.mqtt.enabled }}
{{- $_ = set $cfg "mqtt" (dict "listen" (printf "0.0.0.0:%d" (int .Values.mqtt.port))) }}
{{- end }}
{{- if .Values.http.enabled }}
{{- $_ = set $cfg "http" (dict "listen" (printf "0.0.0.0:%d" (int .Values.http.port))) }}
{{- end }}
{{- $cfg = mustMergeOverwrite $cfg (deepCopy .Values.config) }}
{{- toYaml $cfg }}
{{- end }}
