{{/*
Names follow the revision, not the release: the server derives its serving certificate's DNS names from the
revision (sidecar-injector or sidecar-injector-<revision>), and the webhooks must call exactly that Service.
*/}}
{{- define "sidecar-injector.name" -}}
{{- include "sidecar-injector.validate" . -}}
sidecar-injector{{ if .Values.revision }}-{{ .Values.revision }}{{ end }}
{{- end }}

{{/* The value of istio.io/rev that selects this revision, as in Istio: "default" for the default revision. */}}
{{- define "sidecar-injector.revisionLabel" -}}
{{- .Values.revision | default "default" -}}
{{- end }}

{{/*
Cluster-scoped names get the namespace as a suffix outside istio-system, as Istio's do, so the same revision can
be installed in two namespaces.
*/}}
{{- define "sidecar-injector.clusterSuffix" -}}
{{- if ne .Release.Namespace "istio-system" }}-{{ .Release.Namespace }}{{ end -}}
{{- end }}

{{- define "sidecar-injector.webhookConfigName" -}}
{{ include "sidecar-injector.name" . }}{{ include "sidecar-injector.clusterSuffix" . }}
{{- end }}

{{/* Call with (list $ "<tag>"). */}}
{{- define "sidecar-injector.tagWebhookConfigName" -}}
{{- $root := index . 0 -}}
sidecar-injector-revision-tag-{{ index . 1 }}{{ include "sidecar-injector.clusterSuffix" $root }}
{{- end }}

{{/* Every MutatingWebhookConfiguration of this release, as a JSON list: RBAC, the server and the uninstall hook. */}}
{{- define "sidecar-injector.webhookConfigNames" -}}
{{- $names := list (include "sidecar-injector.webhookConfigName" .) -}}
{{- range .Values.revisionTags -}}
{{- $names = append $names (include "sidecar-injector.tagWebhookConfigName" (list $ .)) -}}
{{- end -}}
{{- toJson $names -}}
{{- end }}

{{- define "sidecar-injector.certSecretName" -}}
{{- if eq .Values.certificates.mode "secret" -}}
{{ .Values.certificates.secret.name }}
{{- else -}}
{{ include "sidecar-injector.name" . }}-tls
{{- end -}}
{{- end }}

{{- define "sidecar-injector.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "sidecar-injector.selectorLabels" -}}
app.kubernetes.io/name: sidecar-injector
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Not Istio's istio.io/rev: istiod's certificate patcher writes its own CA into every webhook configuration labelled
with its revision, and istiod-<revision> runs beside this release (it serves the injected proxies), so the two
would overwrite each other's caBundle.
*/}}
{{- define "sidecar-injector.labels" -}}
{{ include "sidecar-injector.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
sidecar-injector/revision: {{ include "sidecar-injector.revisionLabel" . }}
{{- end }}

{{/*
Labels of every pod this chart runs. sidecar.istio.io/inject=false keeps them out of every webhook of every
revision (and of istiod's), so a fail-closed webhook never blocks its own replacement pods, even in a namespace
the operator labelled for injection.
*/}}
{{- define "sidecar-injector.podLabels" -}}
{{ include "sidecar-injector.selectorLabels" . }}
sidecar.istio.io/inject: "false"
{{- end }}

{{/*
Rules across values that values.schema.json cannot state with a clear message; checked wherever a name is needed,
so every template fails the same way.
*/}}
{{- define "sidecar-injector.validate" -}}
{{- if eq .Values.revision "default" -}}
{{- fail "revision: use \"\" for the default revision (\"default\" is the value of istio.io/rev that selects it)" -}}
{{- end -}}
{{- range .Values.revisionTags -}}
{{- if eq . (include "sidecar-injector.revisionLabel" $) -}}
{{- fail (printf "revisionTags: %q is the revision itself" .) -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.certificates.mode "secret") (not (and .Values.certificates.secret.name .Values.certificates.secret.caBundle)) -}}
{{- fail "certificates.mode secret needs certificates.secret.name (a kubernetes.io/tls Secret in the release namespace) and certificates.secret.caBundle (base64 PEM of its CA)" -}}
{{- end -}}
{{- range list "revision" "tags" "enableNamespacesByDefault" -}}
{{- if hasKey $.Values.config . -}}
{{- fail (printf "config.%s: set it at the top level of the values (the webhook selectors are built from it too)" .) -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/* The server's config file: config from the values, plus the keys the webhook selectors are built from. */}}
{{- define "sidecar-injector.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- $_ := set $config "revision" (.Values.revision | default "") -}}
{{- $_ = set $config "tags" (.Values.revisionTags | default list) -}}
{{- $_ = set $config "enableNamespacesByDefault" (.Values.enableNamespacesByDefault | default false) -}}
{{- toYaml $config -}}
{{- end }}
