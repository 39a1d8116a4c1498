{{/* Names, labels and the values derived from several others. */}}

{{- define "scr.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name; short enough for the suffixes below (-connect-ui, -restart, ...). */}}
{{- define "scr.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "scr.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "scr.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scr.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "scr.labels" -}}
helm.sh/chart: {{ include "scr.chart" . }}
{{ include "scr.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: spark-connect-router
{{- end }}

{{- define "scr.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}

{{/* The router. */}}
{{- define "scr.router.name" -}}{{ include "scr.fullname" . }}-router{{- end }}
{{- define "scr.router.url" -}}
{{- printf "http://%s.%s.svc:%v" (include "scr.router.name" .) .Release.Namespace .Values.router.service.port }}
{{- end }}
{{- define "scr.router.databaseSecret" -}}
{{- default (printf "%s-db" (include "scr.router.name" .)) .Values.router.database.existingSecret }}
{{- end }}

{{/* The Connect server. */}}
{{- define "scr.connect.name" -}}{{ include "scr.fullname" . }}-connect{{- end }}
{{- define "scr.connect.serverId" -}}{{ default (include "scr.connect.name" .) .Values.connectServer.serverId }}{{- end }}
{{- define "scr.connect.url" -}}
{{- default (printf "sc://%s.%s.svc:%v" (include "scr.connect.name" .) .Release.Namespace .Values.connectServer.service.port) .Values.connectServer.clientUrl }}
{{- end }}
{{- define "scr.connect.uiUrl" -}}
{{- printf "http://%s-ui.%s.svc:%v" (include "scr.connect.name" .) .Release.Namespace .Values.connectServer.uiService.port }}
{{- end }}
{{/* One Connect server of the pool (`connectServer.replicas`), as YAML to read with fromYaml: its index, resource
     name, server id, the Connect URL the router hands its clients, its UI/REST URL, its executors' pod name prefix.
     Server 0 is the router's default server, with the names of a one-server release; server N is "<...>-N". */}}
{{- define "scr.connect.server" -}}
{{- $root := .root }}
{{- $i := int .index }}
{{- $c := $root.Values.connectServer }}
{{- $prefix := printf "%s-exec" (include "scr.fullname" $root | trunc 35 | trimSuffix "-") }}
{{- if eq $i 0 }}
index: 0
name: {{ include "scr.connect.name" $root | quote }}
serverId: {{ include "scr.connect.serverId" $root | quote }}
url: {{ include "scr.connect.url" $root | quote }}
uiUrl: {{ include "scr.connect.uiUrl" $root | quote }}
executorPrefix: {{ $prefix | quote }}
{{- else }}
{{- $name := printf "%s-%d" (include "scr.connect.name" $root) $i }}
{{- $urls := $c.clientUrls | default list }}
{{- $url := "" }}
{{- if lt (sub $i 1 | int) (len $urls) }}{{ $url = index $urls (sub $i 1 | int) }}{{ end }}
index: {{ $i }}
name: {{ $name | quote }}
serverId: {{ printf "%s-%d" (include "scr.connect.serverId" $root) $i | quote }}
url: {{ default (printf "sc://%s.%s.svc:%v" $name $root.Release.Namespace $c.service.port) $url | quote }}
uiUrl: {{ printf "http://%s-ui.%s.svc:%v" $name $root.Release.Namespace $c.uiService.port | quote }}
executorPrefix: {{ printf "%s-%d" $prefix $i | quote }}
{{- end }}
{{- end }}

{{/* Every Connect server of the pool, as a YAML list (see scr.connect.server). */}}
{{- define "scr.connect.servers" -}}
{{- if lt (int .Values.connectServer.replicas) 1 }}{{ fail "connectServer.replicas must be at least 1 (connectServer.enabled=false deploys the router only)" }}{{ end }}
servers:
{{- range $i := until (int .Values.connectServer.replicas) }}
- {{- include "scr.connect.server" (dict "root" $ "index" $i) | nindent 2 }}
{{- end }}
{{- end }}

{{/* The labels that select one Connect server's pod. With one server, those of the releases before pools (a
     Deployment's selector cannot change on upgrade); in a pool also the server's name. */}}
{{- define "scr.connect.selectorLabels" -}}
{{ include "scr.selectorLabels" .root }}
app.kubernetes.io/component: connect-server
{{- if gt (int .root.Values.connectServer.replicas) 1 }}
spark-router.io/connect-server: {{ .name }}
{{- end }}
{{- end }}

{{- define "scr.connect.serviceAccountName" -}}
{{- if .Values.connectServer.serviceAccount.create }}
{{- default (include "scr.connect.name" .) .Values.connectServer.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.connectServer.serviceAccount.name }}
{{- end }}
{{- end }}
{{- define "scr.connect.executorImage" -}}
{{- default (include "scr.image" (dict "image" .Values.connectServer.image "root" .)) .Values.connectServer.executor.image }}
{{- end }}

{{/* The restart job. */}}
{{- define "scr.restart.name" -}}{{ include "scr.fullname" . }}-restart{{- end }}

{{/* An env entry from the tokens Secret (use inside `if .Values.tokens.existingSecret`). */}}
{{- define "scr.tokenEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.tokens.existingSecret }}
      key: {{ .key }}
{{- end }}

{{/* The Connect server's Spark settings as a dict: the article's settings for a long-running shared server,
     Spark on Kubernetes in client mode, the router's listener, then connectServer.sparkConf on top. */}}
{{- define "scr.connect.sparkConf" -}}
{{- $c := .Values.connectServer }}
{{- $conf := dict }}
{{- /* The server's own settings, shared with the local server and the image: files/connect-server.conf (a link to
     service/ops/connect-server.conf). Lines are `key value`; `#` starts a comment. */}}
{{- range $line := .Files.Get "files/connect-server.conf" | splitList "\n" }}
{{- $line = trim $line }}
{{- if and $line (not (hasPrefix "#" $line)) }}
{{- $pair := regexSplit "\\s+" $line 2 }}
{{- $_ := set $conf (index $pair 0) (index $pair 1) }}
{{- end }}
{{- end }}
{{- if not (hasKey $conf "spark.dynamicAllocation.enabled") }}{{ fail "files/connect-server.conf is missing or empty: it must link to service/ops/connect-server.conf" }}{{ end }}
{{- /* Spark on Kubernetes, client mode: the server pod is the driver; executors are pods of the same image. */}}
{{- $_ := set $conf "spark.submit.deployMode" "client" }}
{{- $_ := set $conf "spark.driver.bindAddress" "0.0.0.0" }}
{{- $_ := set $conf "spark.driver.port" "7078" }}
{{- $_ := set $conf "spark.driver.blockManager.port" "7079" }}
{{- $_ := set $conf "spark.blockManager.port" "7079" }}
{{- $_ := set $conf "spark.driver.memory" $c.driver.memory }}
{{- $_ := set $conf "spark.executor.memory" $c.executor.memory }}
{{- $_ := set $conf "spark.executor.cores" (toString $c.executor.cores) }}
{{- $_ := set $conf "spark.kubernetes.executor.request.cores" (toString (default $c.executor.cores $c.executor.requestCores)) }}
{{- with $c.executor.limitCores }}{{ $_ := set $conf "spark.kubernetes.executor.limit.cores" (toString .) }}{{ end }}
{{- $_ := set $conf "spark.kubernetes.container.image" (include "scr.connect.executorImage" .) }}
{{- $_ := set $conf "spark.kubernetes.container.image.pullPolicy" $c.image.pullPolicy }}
{{- with .Values.imagePullSecrets }}
{{- $names := list }}{{ range . }}{{ $names = append $names .name }}{{ end }}
{{- $_ := set $conf "spark.kubernetes.container.image.pullSecrets" (join "," $names) }}
{{- end }}
{{- $_ := set $conf "spark.kubernetes.executor.podNamePrefix" (printf "%s-exec" (include "scr.fullname" . | trunc 35 | trimSuffix "-")) }}
{{- with $c.executor.serviceAccountName }}{{ $_ := set $conf "spark.kubernetes.authenticate.executor.serviceAccountName" . }}{{ end }}
{{- $_ := set $conf "spark.kubernetes.executor.label.app.kubernetes.io/name" (include "scr.name" .) }}
{{- $_ := set $conf "spark.kubernetes.executor.label.app.kubernetes.io/instance" .Release.Name }}
{{- $_ := set $conf "spark.kubernetes.executor.label.app.kubernetes.io/component" "connect-executor" }}
{{- /* Spark Connect. */}}
{{- $_ := set $conf "spark.connect.grpc.binding.port" "15002" }}
{{- $_ := set $conf "spark.ui.port" "4040" }}
{{- /* Dynamic allocation: the executors' range, and the shared file's timeouts unless the values set them. */}}
{{- with $c.dynamicAllocation.shuffleTrackingTimeout }}{{ $_ := set $conf "spark.dynamicAllocation.shuffleTracking.timeout" . }}{{ end }}
{{- with $c.dynamicAllocation.cachedExecutorIdleTimeout }}{{ $_ := set $conf "spark.dynamicAllocation.cachedExecutorIdleTimeout" . }}{{ end }}
{{- with $c.dynamicAllocation.executorIdleTimeout }}{{ $_ := set $conf "spark.dynamicAllocation.executorIdleTimeout" . }}{{ end }}
{{- with $c.dynamicAllocation.schedulerBacklogTimeout }}{{ $_ := set $conf "spark.dynamicAllocation.schedulerBacklogTimeout" . }}{{ end }}
{{- $_ := set $conf "spark.dynamicAllocation.minExecutors" (toString $c.executor.minExecutors) }}
{{- $_ := set $conf "spark.dynamicAllocation.maxExecutors" (toString $c.executor.maxExecutors) }}
{{- /* FAIR needs its pools (the ConfigMap's fairscheduler.xml). */}}
{{- $_ := set $conf "spark.scheduler.allocation.file" "/opt/spark-router/conf/fairscheduler.xml" }}
{{- /* The router's listener. Its token comes from the tokens Secret through the entrypoint. */}}
{{- $_ := set $conf "spark.jars" "/opt/spark-router/jars/spark-router-listener.jar" }}
{{- $_ := set $conf "spark.extraListeners" "io.sparkrouter.listener.RouterListener" }}
{{- $_ := set $conf "spark.router.listener.url" (include "scr.router.url" .) }}
{{- $_ := set $conf "spark.router.listener.kind" "connect" }}
{{- $_ := set $conf "spark.router.listener.serverId" (include "scr.connect.serverId" .) }}
{{- $_ := set $conf "spark.router.listener.spoolDir" "/var/lib/spark-router/spool" }}
{{- $_ := set $conf "spark.router.listener.spoolMaxBytes" (toString (int64 $c.listener.spoolMaxBytes)) }}
{{- $_ := set $conf "spark.router.listener.deadLetterRetentionMs" (toString (int64 $c.listener.deadLetterRetentionMs)) }}
{{- range $key, $value := $c.sparkConf }}{{ $_ := set $conf $key (toString $value) }}{{ end }}
{{- toYaml $conf }}
{{- end }}
