{{/* vim: set filetype=mustache: */}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "driftwise.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified app name (63 chars max, the DNS label limit). Component suffixes ("-ingest",
"-ranking", ...) are added to it, so keep release names short enough for those.
*/}}
{{- define "driftwise.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "driftwise.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "driftwise.labels" -}}
helm.sh/chart: {{ include "driftwise.chart" . }}
{{ include "driftwise.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: driftwise
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "driftwise.selectorLabels" -}}
app.kubernetes.io/name: {{ include "driftwise.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Per-component labels. Call with (dict "root" $ "component" "ingest").
*/}}
{{- define "driftwise.componentLabels" -}}
{{ include "driftwise.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "driftwise.componentSelectorLabels" -}}
{{ include "driftwise.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Object name of a component: <fullname>-<component>. */}}
{{- define "driftwise.componentName" -}}
{{- printf "%s-%s" (include "driftwise.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "driftwise.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "driftwise.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "driftwise.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "driftwise.tritonImage" -}}
{{- printf "%s:%s" .Values.triton.image.repository (default .Chart.AppVersion .Values.triton.image.tag) -}}
{{- end -}}

{{/* Triton's gRPC endpoint (host:port) as the services see it. */}}
{{- define "driftwise.tritonUrl" -}}
{{- if .Values.triton.enabled -}}
{{- printf "%s:%d" (include "driftwise.componentName" (dict "root" . "component" "triton")) (int .Values.triton.service.grpcPort) -}}
{{- else -}}
{{- required "triton.enabled=false needs externalTriton.url (host:port of Triton's gRPC endpoint)" .Values.externalTriton.url -}}
{{- end -}}
{{- end -}}

{{/*
Name of the bundled Milvus subchart's Service: the subchart's own fullname rule (see
charts/milvus/templates/_helpers.tpl), evaluated from the parent.
*/}}
{{- define "driftwise.milvusFullname" -}}
{{- if .Values.milvus.fullnameOverride -}}
{{- .Values.milvus.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default "milvus" .Values.milvus.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "driftwise.milvusUri" -}}
{{- if .Values.milvus.enabled -}}
{{- printf "http://%s:%d" (include "driftwise.milvusFullname" .) (int (default 19530 .Values.milvus.service.port)) -}}
{{- else -}}
{{- required "milvus.enabled=false needs externalMilvus.uri (e.g. http://milvus.example:19530)" .Values.externalMilvus.uri -}}
{{- end -}}
{{- end -}}

{{/* Secret holding the Milvus token, or "" when no token is configured. */}}
{{- define "driftwise.milvusSecretName" -}}
{{- if .Values.milvus.enabled -}}
{{- else if .Values.externalMilvus.existingSecret -}}
{{- .Values.externalMilvus.existingSecret -}}
{{- else if .Values.externalMilvus.token -}}
{{- printf "%s-milvus-token" (include "driftwise.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "driftwise.milvusSecretKey" -}}
{{- if .Values.externalMilvus.existingSecret -}}
{{- .Values.externalMilvus.existingSecretKey -}}
{{- else -}}
token
{{- end -}}
{{- end -}}

{{/* Secret holding the tokens file (auth.enabled): the user's, or the chart's from auth.tenants. */}}
{{- define "driftwise.authSecretName" -}}
{{- if .Values.auth.existingSecret -}}
{{- .Values.auth.existingSecret -}}
{{- else -}}
{{- printf "%s-tokens" (include "driftwise.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "driftwise.authSecretKey" -}}
{{- if .Values.auth.existingSecret -}}
{{- .Values.auth.existingSecretKey -}}
{{- else -}}
tokens.toml
{{- end -}}
{{- end -}}

{{/* The tokens file made from auth.tenants (hashes only). */}}
{{- define "driftwise.tokensFile" -}}
# Driftwise tenants (rendered by the Helm chart): scopes and SHA-256 hashes of their tokens.
{{- range $name, $t := .Values.auth.tenants }}

[tenants.{{ $name }}]
scopes = {{ toJson $t.scopes }}
token_sha256 = {{ toJson $t.tokenSha256 }}
{{- end }}
{{ end -}}

{{/* Port of the gRPC probes: the plaintext health port when TLS is on (kubelet cannot do TLS). */}}
{{- define "driftwise.probePort" -}}
{{- if .Values.tls.enabled -}}
{{- int .Values.tls.healthPort -}}
{{- else -}}
{{- int .Values.server.port -}}
{{- end -}}
{{- end -}}

{{/*
Render a map as TOML: scalars and arrays of scalars first, then one [table] per nested map
(recursively, as [a.b]). Call with (dict "data" $map "prefix" "").
*/}}
{{- define "driftwise.toml" -}}
{{- $prefix := .prefix -}}
{{- range $k, $v := .data -}}
{{- if not (kindIs "map" $v) }}
{{ $k }} = {{ toJson $v }}
{{- end -}}
{{- end -}}
{{- range $k, $v := .data -}}
{{- if kindIs "map" $v }}
{{- $table := ternary $k (printf "%s.%s" $prefix $k) (eq $prefix "") }}

[{{ $table }}]
{{- include "driftwise.toml" (dict "data" $v "prefix" $table) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The settings file (TOML) shared by every Driftwise pod. Per-pod settings (the role, the data
directory, the Milvus token) come from environment variables, which win over the file.
*/}}
{{- define "driftwise.settings" -}}
{{- $cluster := dict
    "partitions" (int .Values.cluster.partitions)
    "nats_urls" (fromJsonArray (include "driftwise.natsUrls" .))
    "stream_replicas" (int (include "driftwise.streamReplicas" .))
    "lease_ttl_seconds" .Values.cluster.leaseTtlSeconds
    "lease_heartbeat_seconds" .Values.cluster.leaseHeartbeatSeconds -}}
{{- $_ := mustMerge $cluster (include "driftwise.natsSecurity" . | fromJson) -}}
{{- if le (float64 .Values.cluster.leaseTtlSeconds) (mulf 2 .Values.cluster.leaseHeartbeatSeconds) -}}
{{- fail "cluster.leaseHeartbeatSeconds must be below half of cluster.leaseTtlSeconds (a lease must survive a missed renewal; the workers refuse to start otherwise)" -}}
{{- end -}}
{{- $s := dict
  "server" (dict
    "host" "0.0.0.0"
    "port" (int .Values.server.port)
    "grace_seconds" .Values.server.graceSeconds)
  "cluster" $cluster
  "triton" (dict
    "url" (include "driftwise.tritonUrl" .)
    "model_name" .Values.triton.modelName)
  "milvus" (dict
    "uri" (include "driftwise.milvusUri" .)
    "index_type" .Values.config.milvusIndexType)
  "observability" (dict
    "metrics_port" (int .Values.metrics.port)
    "metrics_host" "0.0.0.0"
    "log_format" .Values.config.logFormat)
-}}
{{- if .Values.tls.enabled -}}
{{- $dir := "/etc/driftwise-tls" -}}
{{- $tls := dict "cert_file" (printf "%s/tls.crt" $dir) "key_file" (printf "%s/tls.key" $dir) -}}
{{- if .Values.tls.mutual -}}
{{- $_ := set $tls "client_ca_file" (printf "%s/ca.crt" $dir) -}}
{{- end -}}
{{- $_ := set $s "tls" $tls -}}
{{- $_ := set $s.server "health_port" (int .Values.tls.healthPort) -}}
{{- end -}}
{{- if .Values.triton.tls.enabled -}}
{{- $dir := "/etc/driftwise-triton-tls" -}}
{{- $_ := set $s.triton "tls_ca_file" (printf "%s/ca.crt" $dir) -}}
{{- if .Values.triton.tls.mutual -}}
{{- $_ := set $s.triton "tls_cert_file" (printf "%s/tls.crt" $dir) -}}
{{- $_ := set $s.triton "tls_key_file" (printf "%s/tls.key" $dir) -}}
{{- end -}}
{{- with .Values.triton.tls.serverName -}}
{{- $_ := set $s.triton "tls_server_name" . -}}
{{- end -}}
{{- end -}}
{{- if .Values.externalMilvus.tls.enabled -}}
{{- if .Values.milvus.enabled -}}
{{- fail "externalMilvus.tls.enabled needs milvus.enabled=false (the bundled Milvus is plaintext)" -}}
{{- end -}}
{{- $_ := required "externalMilvus.tls.enabled needs externalMilvus.tls.existingSecret (a Secret with ca.crt, and tls.crt + tls.key when mutual)" .Values.externalMilvus.tls.existingSecret -}}
{{- $dir := "/etc/driftwise-milvus-tls" -}}
{{- $_ := set $s.milvus "tls_ca_file" (printf "%s/ca.crt" $dir) -}}
{{- if .Values.externalMilvus.tls.mutual -}}
{{- $_ := set $s.milvus "tls_cert_file" (printf "%s/tls.crt" $dir) -}}
{{- $_ := set $s.milvus "tls_key_file" (printf "%s/tls.key" $dir) -}}
{{- end -}}
{{- with .Values.externalMilvus.tls.serverName -}}
{{- $_ := set $s.milvus "tls_server_name" . -}}
{{- end -}}
{{- end -}}
{{- if .Values.auth.enabled -}}
{{- $_ := set $s "auth" (dict "enabled" true "tokens_file" (printf "/etc/driftwise-auth/%s" (include "driftwise.authSecretKey" .))) -}}
{{- end -}}
{{- if .Values.privacy.pseudonymiseUserIds -}}
{{- $_ := required "privacy.pseudonymiseUserIds needs privacy.existingSecret (a Secret holding the key; the chart never makes one)" .Values.privacy.existingSecret -}}
{{- $_ := set $s "privacy" (dict "pseudonymise_user_ids" true "user_id_key_file" (printf "/etc/driftwise-privacy/%s" .Values.privacy.existingSecretKey)) -}}
{{- end -}}
{{- $merged := mustMergeOverwrite $s (deepCopy .Values.config.extra) -}}
# Driftwise settings (rendered by the Helm chart; environment variables DRIFTWISE_* win).
{{- include "driftwise.toml" (dict "data" $merged "prefix" "") }}
{{ end -}}

{{/* Secret of the Driftwise -> Triton TLS: triton.tls.existingSecret, else tls.existingSecret. */}}
{{- define "driftwise.tritonTlsSecret" -}}
{{- required "triton.tls.enabled needs triton.tls.existingSecret or tls.existingSecret (a Secret with tls.crt, tls.key and ca.crt)" (default .Values.tls.existingSecret .Values.triton.tls.existingSecret) -}}
{{- end -}}

{{/* Termination grace: preStop pause + the server's own grace + a margin. */}}
{{- define "driftwise.terminationGrace" -}}
{{- add (int .Values.server.preStopSleepSeconds) (int (ceil .Values.server.graceSeconds)) (int .Values.server.terminationMarginSeconds) -}}
{{- end -}}

{{/*
Environment shared by the Driftwise containers. Call with (dict "root" $ "component" "ingest").
*/}}
{{- define "driftwise.env" -}}
{{- $root := .root -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: DRIFTWISE_CONFIG
  value: /etc/driftwise/driftwise.toml
- name: DRIFTWISE_SERVER__ROLE
  value: {{ .component | quote }}
- name: DRIFTWISE_DATA_DIR
  value: /var/lib/driftwise
- name: HOME
  value: /tmp
- name: PYTHONUNBUFFERED
  value: "1"
{{- $secret := include "driftwise.milvusSecretName" $root }}
{{- if $secret }}
- name: DRIFTWISE_MILVUS__TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ include "driftwise.milvusSecretKey" $root }}
{{- end }}
{{- if $root.Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $root.Values.otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $root.Values.otel.protocol | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "driftwise-%s" .component | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ include "driftwise.otelResourceAttributes" (dict "root" $root "component" .component) | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $root.Values.otel.tracesSampler | quote }}
{{- if $root.Values.otel.tracesSamplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $root.Values.otel.tracesSamplerArg | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "driftwise.otelResourceAttributes" -}}
{{- $attrs := list
  (printf "service.namespace=%s" .root.Release.Namespace)
  (printf "service.version=%s" .root.Chart.AppVersion)
  (printf "service.instance.id=$(POD_NAME)")
  (printf "k8s.namespace.name=%s" .root.Release.Namespace)
  "k8s.pod.name=$(POD_NAME)"
  "k8s.node.name=$(NODE_NAME)"
  (printf "driftwise.component=%s" .component) -}}
{{- range $k, $v := .root.Values.otel.resourceAttributes -}}
{{- $attrs = append $attrs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $attrs -}}
{{- end -}}

{{/* Native gRPC probes on the standard health service (service ""). */}}
{{- define "driftwise.grpcProbes" -}}
{{- $p := .probes -}}
startupProbe:
  grpc:
    port: {{ .port }}
  periodSeconds: {{ $p.startup.periodSeconds }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
livenessProbe:
  grpc:
    port: {{ .port }}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  grpc:
    port: {{ .port }}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
{{- end -}}

{{/* Pod-level scheduling fields of a component's values. */}}
{{- define "driftwise.scheduling" -}}
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
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* The OTLP endpoint's port (for NetworkPolicy egress): explicit, else 443/4318 by scheme. */}}
{{- define "driftwise.otlpPort" -}}
{{- $u := urlParse .Values.otel.endpoint -}}
{{- $parts := splitList ":" $u.host -}}
{{- if gt (len $parts) 1 -}}
{{- last $parts -}}
{{- else if eq $u.scheme "https" -}}
443
{{- else -}}
4318
{{- end -}}
{{- end -}}

{{/* The Driftwise tiers (roles of `driftwise serve` on JetStream), as a JSON list (fromJsonArray it). */}}
{{- define "driftwise.components" -}}
["ingest", "worker", "ranking"]
{{- end -}}

{{/*
What a component's pods reach: every role encodes with Triton; ingest and ranking open Milvus and
take user ids from callers (so they hold the user-id key); the worker reads and writes JetStream
only. Call with (dict "root" $ "component" "ingest"); "true" or "".
*/}}
{{- define "driftwise.opensMilvus" -}}
{{- if ne .component "worker" -}}true{{- end -}}
{{- end -}}

{{/* Name of the bundled NATS subchart's client Service (its own fullname rule, see charts/nats). */}}
{{- define "driftwise.natsFullname" -}}
{{- if .Values.nats.fullnameOverride -}}
{{- .Values.nats.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default "nats" .Values.nats.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* cluster.nats_urls as a list: the bundled NATS client Service, else externalNats.urls. */}}
{{- define "driftwise.natsUrls" -}}
{{- if .Values.nats.enabled -}}
{{- list (printf "nats://%s.%s.svc.%s:%d" (include "driftwise.natsFullname" .) .Release.Namespace .Values.clusterDomain (int (default 4222 .Values.nats.service.clientPort))) | toJson -}}
{{- else -}}
{{- if not .Values.externalNats.urls -}}
{{- fail "the event log needs nats.enabled=true or externalNats.urls (the NATS servers)" -}}
{{- end -}}
{{- .Values.externalNats.urls | toJson -}}
{{- end -}}
{{- end -}}

{{/* cluster.stream_replicas: cluster.streamReplicas, else min(3, nats.replicas) with the bundled NATS. */}}
{{- define "driftwise.streamReplicas" -}}
{{- $n := int (default 3 .Values.nats.replicas) -}}
{{- if not (kindIs "invalid" .Values.cluster.streamReplicas) -}}
{{- $r := int .Values.cluster.streamReplicas -}}
{{- if and .Values.nats.enabled (gt $r $n) -}}
{{- fail (printf "cluster.streamReplicas=%d needs at least as many NATS servers (nats.replicas=%d)" $r $n) -}}
{{- end -}}
{{- $r -}}
{{- else if .Values.nats.enabled -}}
{{- min 3 $n -}}
{{- else -}}
{{- fail "externalNats needs cluster.streamReplicas (1 for a single NATS server, 3 for a cluster)" -}}
{{- end -}}
{{- end -}}

{{/* Ports of the NATS servers the pods connect to (NetworkPolicy egress), as a JSON list. */}}
{{- define "driftwise.natsPorts" -}}
{{- $ports := list -}}
{{- range $u := fromJsonArray (include "driftwise.natsUrls" .) -}}
{{- $host := (urlParse $u).host -}}
{{- $ports = append $ports (ternary (last (splitList ":" $host)) "4222" (contains ":" $host) | int) -}}
{{- end -}}
{{- $ports | uniq | toJson -}}
{{- end -}}

{{/*
settings.cluster.nats_* (as JSON: fromJson it): the files of externalNats.tls,
.credentials and .token where _pod.tpl mounts them. The bundled NATS is plaintext with no
accounts, so they are refused with it.
*/}}
{{- define "driftwise.natsSecurity" -}}
{{- $n := .Values.externalNats -}}
{{- $s := dict -}}
{{- if or $n.tls.enabled $n.credentials.existingSecret $n.token.existingSecret -}}
{{- if .Values.nats.enabled -}}
{{- fail "externalNats.tls, externalNats.credentials and externalNats.token are for an external NATS (nats.enabled=false): the bundled NATS is plaintext, without accounts" -}}
{{- end -}}
{{- end -}}
{{- if $n.tls.enabled -}}
{{- $_ := required "externalNats.tls.enabled needs externalNats.tls.existingSecret (a Secret with ca.crt, and tls.crt + tls.key when mutual)" $n.tls.existingSecret -}}
{{- $dir := "/etc/driftwise-nats-tls" -}}
{{- $_ := set $s "nats_tls_ca_file" (printf "%s/ca.crt" $dir) -}}
{{- if $n.tls.mutual -}}
{{- $_ := set $s "nats_tls_cert_file" (printf "%s/tls.crt" $dir) -}}
{{- $_ := set $s "nats_tls_key_file" (printf "%s/tls.key" $dir) -}}
{{- end -}}
{{- with $n.tls.serverName -}}
{{- $_ := set $s "nats_tls_server_name" . -}}
{{- end -}}
{{- end -}}
{{- if $n.credentials.existingSecret -}}
{{- $_ := set $s "nats_credentials_file" (printf "/etc/driftwise-nats-credentials/%s" $n.credentials.existingSecretKey) -}}
{{- end -}}
{{- if $n.token.existingSecret -}}
{{- $_ := set $s "nats_token_file" (printf "/etc/driftwise-nats-token/%s" $n.token.existingSecretKey) -}}
{{- end -}}
{{- $s | toJson -}}
{{- end -}}
