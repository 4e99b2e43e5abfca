// The built-in `gateway` template: istio-proxy as a gateway (`proxy router`), no traffic capture and no
// init container, allowed to bind low ports (gateway-injection-template.yaml in Istio's chart).

import type { InterceptionMode } from '../annotations.js';
import { ANNOTATION, LABEL, PORTS, PROXY_CONTAINER } from '../constants.js';
import type { JsonObject } from '../json.js';
import { own } from '../labels.js';
import { agentVolumes, canonicalRevision, imageRef, proxyEnv, proxyResources } from './sidecar.js';
import type { PartialPod, TemplateContext } from './template.js';

// The gateway's env is the sidecar's, with three differences in istiod's gateway template: the mesh's interception
// mode (a gateway captures nothing, so the annotation does not apply), the workload name from the deployment only
// (not the workload-name label), and ISTIO_META_APP_CONTAINERS moved before ISTIO_META_CLUSTER_ID.
function gatewayEnv(ctx: TemplateContext): JsonObject[] {
  const interceptionMode = (ctx.settings.proxyConfig.interceptionMode as InterceptionMode | undefined) ?? 'REDIRECT';
  const env = proxyEnv({ ...ctx, settings: { ...ctx.settings, interceptionMode }, labels: undefined }).filter(
    (e) => e.name !== 'REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION',
  );
  const [appContainers] = env.splice(env.findIndex((e) => e.name === 'ISTIO_META_APP_CONTAINERS'), 1);
  env.splice(env.findIndex((e) => e.name === 'ISTIO_META_CLUSTER_ID'), 0, appContainers as JsonObject);
  return env;
}

export function gatewayTemplate(ctx: TemplateContext): PartialPod {
  const { config, settings, labels, annotations, appContainers } = ctx;
  const proxy: JsonObject = {
    name: PROXY_CONTAINER,
    image: imageRef(settings.proxyImage ?? config.images.proxy, config, settings.proxyImageType),
    ports: [{ containerPort: PORTS.envoyPrometheus, name: 'http-envoy-prom', protocol: 'TCP' }],
    args: [
      'proxy',
      'router',
      '--domain',
      `$(POD_NAMESPACE).svc.${config.proxy.clusterDomain}`,
      `--proxyLogLevel=${settings.proxyLogLevel}`,
      `--proxyComponentLogLevel=${settings.proxyComponentLogLevel}`,
      `--log_output_level=${settings.agentLogLevel}`,
    ],
    securityContext: { runAsGroup: ctx.proxyGid, runAsUser: ctx.proxyUid },
    env: gatewayEnv(ctx),
  };
  if (config.images.pullPolicy) proxy.imagePullPolicy = config.images.pullPolicy;
  const readiness: JsonObject = { failureThreshold: config.proxy.readinessFailureThreshold, httpGet: { path: '/healthz/ready', port: PORTS.readiness } };
  if (config.proxy.readinessInitialDelaySeconds > 0) readiness.initialDelaySeconds = config.proxy.readinessInitialDelaySeconds;
  readiness.periodSeconds = config.proxy.readinessPeriodSeconds;
  readiness.timeoutSeconds = 3;
  proxy.readinessProbe = readiness;
  const mounts: JsonObject[] = [
    { mountPath: '/var/run/secrets/workload-spiffe-uds', name: 'workload-socket' },
    { mountPath: '/var/run/secrets/credential-uds', name: 'credential-socket' },
    { mountPath: '/var/run/secrets/workload-spiffe-credentials', name: 'workload-certs' },
    { mountPath: '/var/run/secrets/istio', name: 'istiod-ca-cert' },
    { mountPath: '/var/lib/istio/data', name: 'istio-data' },
  ];
  if (settings.bootstrapOverride !== undefined) mounts.push({ mountPath: '/etc/istio/custom-bootstrap', name: 'custom-bootstrap-volume' });
  mounts.push({ mountPath: '/etc/istio/proxy', name: 'istio-envoy' }, { mountPath: '/var/run/secrets/tokens', name: 'istio-token' });
  if (config.proxy.mountMtlsCerts) mounts.push({ mountPath: '/etc/certs/', name: 'istio-certs', readOnly: true });
  mounts.push({ mountPath: '/etc/istio/pod', name: 'istio-podinfo' });
  proxy.volumeMounts = mounts;
  if (settings.resourceOverride) proxy.resources = proxyResources(config, settings);

  const volumes: JsonObject[] = [
    { name: 'workload-socket' },
    { emptyDir: {}, name: 'credential-socket' },
    { emptyDir: {}, name: 'workload-certs' },
    ...agentVolumes(settings),
  ];

  const outAnnotations: Record<string, string> = { [ANNOTATION.rev]: ctx.revision };
  const firstApp = appContainers.find((c) => c.name !== PROXY_CONTAINER)?.name;
  if (typeof firstApp === 'string') {
    if (own(annotations, ANNOTATION.defaultLogsContainer) === undefined) outAnnotations[ANNOTATION.defaultLogsContainer] = firstApp;
    if (own(annotations, ANNOTATION.defaultContainer) === undefined) outAnnotations[ANNOTATION.defaultContainer] = firstApp;
  }
  const name = own(labels, LABEL.canonicalName) || own(labels, 'app.kubernetes.io/name') || own(labels, 'app') || ctx.workload.name;
  const spec: JsonObject = {
    securityContext: { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] },
    containers: [proxy],
    volumes,
  };
  if (config.images.pullSecrets.length) spec.imagePullSecrets = config.images.pullSecrets.map((n) => ({ name: n }));
  return {
    metadata: { labels: { [LABEL.canonicalName]: name, [LABEL.canonicalRevision]: canonicalRevision(labels) }, annotations: outAnnotations },
    spec,
  };
}
