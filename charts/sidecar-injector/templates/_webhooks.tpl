{{/*
The webhooks of one revision or tag, with Istio's selectors (istio-injector.md §2.3-§2.5, in Istio's order) and
one addition to every namespaceSelector: the release namespace and webhook.excludedNamespaces are never sent to
the webhook, so a fail-closed webhook cannot block the pods that would bring it back.

Call with (dict "root" $ "selects" "<value of istio.io/rev>" "legacy" <bool>). legacy adds the webhooks of the
default revision: namespace istio-injection=enabled, pod sidecar.istio.io/inject=true, and with
enableNamespacesByDefault the auto webhook.
*/}}
{{- define "sidecar-injector.webhooks" -}}
{{- $root := .root -}}
- name: rev.namespace.sidecar-injector.istio.io
  {{- include "sidecar-injector.webhookCall" $root | nindent 2 }}
  namespaceSelector:
    matchExpressions:
      - key: istio.io/rev
        operator: In
        values: [{{ .selects | quote }}]
      - key: istio-injection
        operator: DoesNotExist
      {{- include "sidecar-injector.excludedNamespaces" $root | nindent 6 }}
  objectSelector:
    matchExpressions:
      - key: sidecar.istio.io/inject
        operator: NotIn
        values: ["false"]
- name: rev.object.sidecar-injector.istio.io
  {{- include "sidecar-injector.webhookCall" $root | nindent 2 }}
  namespaceSelector:
    matchExpressions:
      - key: istio.io/rev
        operator: DoesNotExist
      - key: istio-injection
        operator: DoesNotExist
      {{- include "sidecar-injector.excludedNamespaces" $root | nindent 6 }}
  objectSelector:
    matchExpressions:
      - key: sidecar.istio.io/inject
        operator: NotIn
        values: ["false"]
      - key: istio.io/rev
        operator: In
        values: [{{ .selects | quote }}]
{{- if .legacy }}
- name: namespace.sidecar-injector.istio.io
  {{- include "sidecar-injector.webhookCall" $root | nindent 2 }}
  namespaceSelector:
    matchExpressions:
      - key: istio-injection
        operator: In
        values: ["enabled"]
      {{- include "sidecar-injector.excludedNamespaces" $root | nindent 6 }}
  objectSelector:
    matchExpressions:
      - key: sidecar.istio.io/inject
        operator: NotIn
        values: ["false"]
- name: object.sidecar-injector.istio.io
  {{- include "sidecar-injector.webhookCall" $root | nindent 2 }}
  namespaceSelector:
    matchExpressions:
      - key: istio-injection
        operator: DoesNotExist
      - key: istio.io/rev
        operator: DoesNotExist
      {{- include "sidecar-injector.excludedNamespaces" $root | nindent 6 }}
  objectSelector:
    matchExpressions:
      - key: sidecar.istio.io/inject
        operator: In
        values: ["true"]
      - key: istio.io/rev
        operator: DoesNotExist
{{- if $root.Values.enableNamespacesByDefault }}
- name: auto.sidecar-injector.istio.io
  {{- include "sidecar-injector.webhookCall" $root | nindent 2 }}
  namespaceSelector:
    matchExpressions:
      - key: istio-injection
        operator: DoesNotExist
      - key: istio.io/rev
        operator: DoesNotExist
      - key: kubernetes.io/metadata.name
        operator: NotIn
        values: ["kube-system", "kube-public", "kube-node-lease", "local-path-storage"]
      {{- include "sidecar-injector.excludedNamespaces" $root | nindent 6 }}
  objectSelector:
    matchExpressions:
      - key: sidecar.istio.io/inject
        operator: DoesNotExist
      - key: istio.io/rev
        operator: DoesNotExist
{{- end }}
{{- end }}
{{- end }}

{{/* Where and how the API server calls the revision; tags call their revision's Service too. */}}
{{- define "sidecar-injector.webhookCall" -}}
clientConfig:
  service:
    name: {{ include "sidecar-injector.name" . }}
    namespace: {{ .Release.Namespace }}
    path: /inject
    port: 443
  {{- if eq .Values.certificates.mode "secret" }}
  caBundle: {{ .Values.certificates.secret.caBundle }}
  {{- end }}
sideEffects: None
rules:
  - operations: ["CREATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
failurePolicy: {{ .Values.webhook.failurePolicy }}
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
reinvocationPolicy: {{ .Values.webhook.reinvocationPolicy }}
admissionReviewVersions: ["v1"]
{{- end }}

{{- define "sidecar-injector.excludedNamespaces" -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values: {{ prepend .Values.webhook.excludedNamespaces .Release.Namespace | uniq | toJson }}
{{- end }}

{{/*
Annotations of the revision's and the tags' configurations, as YAML, or nothing. In self-managed mode caBundle is
absent from the webhooks and the server patches it in; Helm's three-way merge (and server-side apply) leaves a
field the chart never rendered alone on upgrade.
*/}}
{{- define "sidecar-injector.webhookConfigAnnotations" -}}
{{- $annotations := deepCopy .Values.webhook.annotations -}}
{{- if eq .Values.certificates.mode "cert-manager" -}}
{{- $_ := set $annotations "cert-manager.io/inject-ca-from" (printf "%s/%s-serving" .Release.Namespace (include "sidecar-injector.name" .)) -}}
{{- end -}}
{{- with $annotations }}{{ toYaml . }}{{ end -}}
{{- end }}
