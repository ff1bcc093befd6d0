{{/*
Pod template of a Driftwise tier (ingest, worker, ranking). Call with
(dict "root" $ "component" "ingest" "values" .Values.ingest).
*/}}
{{- define "driftwise.podTemplate" -}}
{{- $root := .root -}}
{{- $v := .values -}}
metadata:
  labels:
    {{- include "driftwise.componentLabels" (dict "root" $root "component" .component) | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "driftwise.settings" $root | sha256sum }}
    {{- if and (not $root.Values.milvus.enabled) $root.Values.externalMilvus.token (not $root.Values.externalMilvus.existingSecret) }}
    checksum/secret: {{ $root.Values.externalMilvus.token | sha256sum }}
    {{- end }}
    {{- if and $root.Values.auth.enabled (not $root.Values.auth.existingSecret) }}
    checksum/tokens: {{ include "driftwise.tokensFile" $root | sha256sum }}
    {{- end }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "driftwise.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ include "driftwise.terminationGrace" $root }}
  {{- with (include "driftwise.scheduling" $v | trim) }}
  {{- . | nindent 2 }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "driftwise.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: ["serve"]
      ports:
        - name: grpc
          containerPort: {{ $root.Values.server.port }}
          protocol: TCP
        - name: metrics
          containerPort: {{ $root.Values.metrics.port }}
          protocol: TCP
        {{- if $root.Values.tls.enabled }}
        - name: health
          containerPort: {{ $root.Values.tls.healthPort }}
          protocol: TCP
        {{- end }}
      env:
        {{- include "driftwise.env" (dict "root" $root "component" .component) | nindent 8 }}
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- include "driftwise.grpcProbes" (dict "port" (include "driftwise.probePort" $root) "probes" $root.Values.probes) | nindent 6 }}
      {{- if gt (int $root.Values.server.preStopSleepSeconds) 0 }}
      lifecycle:
        preStop:
          sleep:
            seconds: {{ $root.Values.server.preStopSleepSeconds }}
      {{- end }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.containerSecurityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/driftwise
          readOnly: true
        - name: data
          mountPath: /var/lib/driftwise
        - name: tmp
          mountPath: /tmp
        {{- if $root.Values.tls.enabled }}
        - name: tls
          mountPath: /etc/driftwise-tls
          readOnly: true
        {{- end }}
        {{- if $root.Values.auth.enabled }}
        - name: tokens
          mountPath: /etc/driftwise-auth
          readOnly: true
        {{- end }}
        {{- if and $root.Values.privacy.pseudonymiseUserIds (include "driftwise.opensMilvus" .) }}
        - name: user-id-key
          mountPath: /etc/driftwise-privacy
          readOnly: true
        {{- end }}
        {{- if $root.Values.triton.tls.enabled }}
        - name: triton-tls
          mountPath: /etc/driftwise-triton-tls
          readOnly: true
        {{- end }}
        {{- if and $root.Values.externalMilvus.tls.enabled (include "driftwise.opensMilvus" .) }}
        - name: milvus-tls
          mountPath: /etc/driftwise-milvus-tls
          readOnly: true
        {{- end }}
        {{- with $root.Values.externalNats }}
        {{- if .tls.enabled }}
        - name: nats-tls
          mountPath: /etc/driftwise-nats-tls
          readOnly: true
        {{- end }}
        {{- if .credentials.existingSecret }}
        - name: nats-credentials
          mountPath: /etc/driftwise-nats-credentials
          readOnly: true
        {{- end }}
        {{- if .token.existingSecret }}
        - name: nats-token
          mountPath: /etc/driftwise-nats-token
          readOnly: true
        {{- end }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "driftwise.fullname" $root }}-config
    - name: tmp
      emptyDir:
        sizeLimit: {{ $root.Values.tmpSizeLimit }}
    {{- if $root.Values.tls.enabled }}
    - name: tls
      secret:
        secretName: {{ required "tls.enabled needs tls.existingSecret (a Secret with tls.crt, tls.key and ca.crt)" $root.Values.tls.existingSecret }}
        defaultMode: 0440
    {{- end }}
    {{- if $root.Values.auth.enabled }}
    - name: tokens
      secret:
        secretName: {{ include "driftwise.authSecretName" $root }}
        defaultMode: 0440
    {{- end }}
    {{- if and $root.Values.privacy.pseudonymiseUserIds (include "driftwise.opensMilvus" .) }}
    - name: user-id-key  # ingest and ranking take user ids from callers; workers see stored ids only
      secret:
        secretName: {{ $root.Values.privacy.existingSecret }}
        defaultMode: 0440
    {{- end }}
    {{- if $root.Values.triton.tls.enabled }}
    - name: triton-tls  # every role encodes through Triton
      secret:
        secretName: {{ include "driftwise.tritonTlsSecret" $root }}
        defaultMode: 0440
    {{- end }}
    {{- if and $root.Values.externalMilvus.tls.enabled (include "driftwise.opensMilvus" .) }}
    - name: milvus-tls  # ingest and ranking open Milvus; workers do not
      secret:
        secretName: {{ $root.Values.externalMilvus.tls.existingSecret }}
        defaultMode: 0440
    {{- end }}
    {{- with $root.Values.externalNats }}
    {{- if .tls.enabled }}
    - name: nats-tls  # every role connects to NATS
      secret:
        secretName: {{ .tls.existingSecret }}
        defaultMode: 0440
    {{- end }}
    {{- if .credentials.existingSecret }}
    - name: nats-credentials
      secret:
        secretName: {{ .credentials.existingSecret }}
        items:
          - key: {{ .credentials.existingSecretKey }}
            path: {{ .credentials.existingSecretKey }}
        defaultMode: 0440
    {{- end }}
    {{- if .token.existingSecret }}
    - name: nats-token
      secret:
        secretName: {{ .token.existingSecret }}
        items:
          - key: {{ .token.existingSecretKey }}
            path: {{ .token.existingSecretKey }}
        defaultMode: 0440
    {{- end }}
    {{- end }}
    - name: data
      emptyDir:
        sizeLimit: {{ $v.dataSizeLimit }}
{{- end -}}
