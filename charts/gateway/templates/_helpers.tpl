{{/*
Name of every object: .Values.name, else the release name (as Istio's gateway chart).
*/}}
{{- define "gateway.name" -}}
{{- $name := .Values.name | default .Release.Name -}}
{{- if gt (len $name) 63 -}}
{{- fail (printf "the gateway name %q is longer than 63 characters (a Service name is a DNS label): set a shorter release name or .Values.name" $name) -}}
{{- end -}}
{{- $name -}}
{{- end }}

{{/*
Selector labels, as Istio's gateway chart: app = the name, istio = the name without a leading "istio-";
.Values.labels.app / .Values.labels.istio replace them when set, even to "" (Istio's migration recipe sets
app: ""; the Deployment selector is immutable, so it must render exactly as Istio's chart renders it).
Gateway resources select the pods with these.
*/}}
{{- define "gateway.selectorLabels" -}}
app: {{ include "gateway.appLabel" . | quote }}
istio: {{ include "gateway.istioLabel" . | quote }}
{{- end }}

{{- define "gateway.appLabel" -}}
{{- include "gateway.labelOr" (list .Values.labels "app" (include "gateway.name" .)) -}}
{{- end }}

{{- define "gateway.istioLabel" -}}
{{- include "gateway.labelOr" (list .Values.labels "istio" (include "gateway.name" . | trimPrefix "istio-")) -}}
{{- end }}

{{/* (list labels key default): labels[key] when the key is set and not null, else the default. */}}
{{- define "gateway.labelOr" -}}
{{- $labels := index . 0 | default dict -}}
{{- $key := index . 1 -}}
{{- if and (hasKey $labels $key) (not (kindIs "invalid" (index $labels $key))) -}}
{{- index $labels $key -}}
{{- else -}}
{{- index . 2 -}}
{{- end -}}
{{- end }}

{{/*
Labels of every object: the selector labels, the user's labels, and the recommended app.kubernetes.io labels.
*/}}
{{- define "gateway.labels" -}}
{{ include "gateway.selectorLabels" . }}
{{- range $key, $val := .Values.labels }}
{{- if and (ne $key "app") (ne $key "istio") }}
{{ $key | quote }}: {{ $val | quote }}
{{- end }}
{{- end }}
app.kubernetes.io/name: {{ include "gateway.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ include "gateway.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: meshgate
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end }}

{{- define "gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "gateway.name" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end }}

{{- define "gateway.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end }}

{{- define "gateway.image" -}}
{{- $repository := required "image.repository is not set: name the meshgate image (built from the repository's Dockerfile)" .Values.image.repository -}}
{{- printf "%s:%s" $repository (include "gateway.imageTag" .) -}}
{{- end }}

{{/*
proxy.drainDuration ("45s") as whole seconds, checked against terminationGracePeriodSeconds.
*/}}
{{- define "gateway.drainSeconds" -}}
{{- $drain := trimSuffix "s" .Values.proxy.drainDuration | int -}}
{{- if le (int .Values.terminationGracePeriodSeconds) $drain -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than proxy.drainDuration (%s): the kubelet would kill the proxy before it finishes draining" (int .Values.terminationGracePeriodSeconds) .Values.proxy.drainDuration) -}}
{{- end -}}
{{- $drain -}}
{{- end }}

{{/*
Ports of the istio-proxy container: every Service targetPort (deduplicated), the status port and the proxy's
Prometheus port 15090 (named http-envoy-prom, as in Istio).
*/}}
{{- define "gateway.proxyPorts" -}}
{{- $seen := dict -}}
{{- range .Values.service.ports }}
{{- $key := toString .targetPort }}
{{- if not (hasKey $seen $key) }}
{{- $_ := set $seen $key true }}
- name: {{ .name }}
  containerPort: {{ .targetPort }}
  protocol: {{ .protocol | default "TCP" }}
{{- end }}
{{- end }}
{{- if not (hasKey $seen "15021") }}
- name: status-port
  containerPort: 15021
  protocol: TCP
{{- end }}
- name: http-envoy-prom
  containerPort: 15090
  protocol: TCP
{{- end }}

{{- define "gateway.containerSecurityContext" -}}
{{- if .Values.containerSecurityContext -}}
{{- toYaml .Values.containerSecurityContext -}}
{{- else -}}
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
privileged: false
readOnlyRootFilesystem: true
runAsUser: 1337
runAsGroup: 1337
runAsNonRoot: true
{{- end -}}
{{- end }}

{{/*
Pod identity from the Downward API, for both containers.
*/}}
{{- define "gateway.podIdentityEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end }}

{{/*
"true" when more than one replica is guaranteed (the HPA's minReplicas, else replicaCount), the condition of
Istio's chart for a PodDisruptionBudget; "" otherwise.
*/}}
{{- define "gateway.multiReplica" -}}
{{- if .Values.autoscaling.enabled -}}
{{- if gt (int .Values.autoscaling.minReplicas) 1 }}true{{ end -}}
{{- else if gt (int .Values.replicaCount) 1 }}true{{ end -}}
{{- end }}

{{/* Istio's top-level imagePullPolicy (its only pull setting) wins over image.pullPolicy when set. */}}
{{- define "gateway.pullPolicy" -}}
{{- .Values.imagePullPolicy | default .Values.image.pullPolicy -}}
{{- end }}

{{/* "true" when a Service targetPort is a privileged port (below 1024), which the non-root proxy binds. */}}
{{- define "gateway.privilegedTargetPort" -}}
{{- range .Values.service.ports }}{{ if lt (int .targetPort) 1024 }}true{{ end }}{{ end -}}
{{- end }}

{{/*
The namespaces the controller watches, comma-separated ("" for all): controller.watchNamespaces, and with
rbac.scope=namespace always the release namespace too (its Roles grant nothing elsewhere).
*/}}
{{- define "gateway.watchNamespaces" -}}
{{- $list := .Values.controller.watchNamespaces | default list -}}
{{- if include "gateway.namespaceScoped" . -}}
{{- $list = prepend $list .Release.Namespace -}}
{{- end -}}
{{- $list | uniq | join "," -}}
{{- end }}

{{/* "true" with rbac.scope=namespace; a release from before the key (helm upgrade --reuse-values) is cluster-scoped. */}}
{{- define "gateway.namespaceScoped" -}}
{{- if eq ((.Values.rbac).scope | default "cluster") "namespace" }}true{{ end -}}
{{- end }}
