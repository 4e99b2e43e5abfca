// The default `sidecar` template: istio-init, istio-proxy, their volumes, labels and annotations, field by field
// as istiod's injection-template.yaml renders them (istio-injector.md §3). A TypeScript function instead of a Go
// text/template: the output is typed data, so no YAML is rendered and re-parsed per pod.

import type { InjectorConfig } from '../../config/schema.js';
import type { InjectionSettings } from '../annotations.js';
import { ANNOTATION, INIT_CONTAINER, LABEL, PORTS, PROXY_CONTAINER, VALIDATION_CONTAINER } from '../constants.js';
import type { Json, JsonObject } from '../json.js';
import { own, type StringMap } from '../labels.js';
import { proxyConfigEnv, proxyMetadataEnv } from '../proxy-config.js';
import type { PartialPod, TemplateContext } from './template.js';

/** `hub/name:tag[-variant]` for a bare image name; a name holding a registry path is used as it is (as Istio). */
export function imageRef(name: string, config: InjectorConfig, imageType?: string): string {
  if (name.includes('/')) return name;
  let tag = config.images.tag;
  if (imageType !== undefined) {
    tag = tag.replace(/-(debug|distroless)$/, '');
    if (imageType !== 'default' && imageType !== '') tag = `${tag}-${imageType}`;
  }
  return `${config.images.hub}/${name}:${tag}`;
}

/** The address of the revision's istiod, for both xDS and the CA: istiod[-<revision>].<namespace>.svc:15012. */
export function istiodAddress(config: InjectorConfig): string {
  const service = config.revision ? `istiod-${config.revision}` : 'istiod';
  return `${service}.${config.istioNamespace}.svc:${PORTS.istiodTls}`;
}

/** istio-iptables' -d: the status port is appended to the excluded inbound ports unless it is 0 or already there. */
export function excludedInboundPorts(settings: InjectionSettings): string {
  const status = String(settings.statusPort);
  const extra = settings.excludeInboundPorts;
  let tail: string;
  if (settings.statusPort === 0) tail = extra;
  else if (extra.split(',').includes(status)) tail = extra;
  else tail = extra ? `${extra},${status}` : status;
  return tail ? `${PORTS.envoyPrometheus},${PORTS.readiness},${tail}` : `${PORTS.envoyPrometheus},${PORTS.readiness}`;
}

function iptablesArgs(ctx: TemplateContext): string[] {
  const { settings, config } = ctx;
  const tproxy = settings.interceptionMode === 'TPROXY';
  const args = [
    'istio-iptables',
    '-p', String(PORTS.outboundCapture),
    '-z', String(PORTS.inboundCapture),
    '-u', tproxy ? '1337' : String(ctx.proxyUid),
    '-m', settings.interceptionMode,
    '-i', settings.includeOutboundIPRanges,
    '-x', settings.excludeOutboundIPRanges,
    '-b', settings.includeInboundPorts,
    '-d', excludedInboundPorts(settings),
  ];
  if (settings.includeOutboundPorts !== undefined) args.push('-q', settings.includeOutboundPorts);
  if (settings.excludeOutboundPorts !== undefined) args.push('-o', settings.excludeOutboundPorts);
  if (settings.rerouteVirtualInterfaces !== undefined) args.push('-k', settings.rerouteVirtualInterfaces);
  if (settings.excludeInterfaces !== undefined) args.push('-c', settings.excludeInterfaces);
  args.push(`--log_output_level=${settings.agentLogLevel}`);
  if (config.cni.enabled) args.push('--run-validation', '--skip-rule-apply');
  return args;
}

/** The proxy's resources: only the annotated values when any is annotated, else the config's without nulls. */
export function proxyResources(config: InjectorConfig, settings: InjectionSettings): JsonObject {
  const out: JsonObject = {};
  const pick = (list: Record<string, string | null>) => {
    const kept: JsonObject = {};
    for (const [name, value] of Object.entries(list)) if (value !== null) kept[name] = value;
    return Object.keys(kept).length ? kept : undefined;
  };
  const chosen = settings.resourceOverride ?? config.proxy.resources;
  const limits = pick(chosen.limits);
  const requests = pick(chosen.requests);
  if (limits) out.limits = limits;
  if (requests) out.requests = requests;
  return out;
}

const fieldRef = (name: string, fieldPath: string): JsonObject => ({ name, valueFrom: { fieldRef: { fieldPath } } });
const resourceRef = (name: string, resource: string): JsonObject => ({
  name,
  valueFrom: { resourceFieldRef: { divisor: '1', resource } },
});

/** ISTIO_META_POD_PORTS: every port of the app containers, one JSON object per line, as istiod formats it. */
export function podPortsEnv(containers: JsonObject[]): string {
  const lines: string[] = [];
  for (const container of containers) {
    if (!Array.isArray(container.ports)) continue;
    for (const port of container.ports) {
      if (typeof port !== 'object' || port === null || Array.isArray(port)) continue;
      // Go's json.Marshal of corev1.ContainerPort: struct field order, empty fields omitted.
      const ordered: JsonObject = {};
      for (const key of ['name', 'hostPort', 'containerPort', 'protocol', 'hostIP']) {
        const value = port[key];
        if (value !== undefined && value !== '' && value !== 0 && value !== null) ordered[key] = value;
      }
      lines.push(JSON.stringify(ordered));
    }
  }
  return lines.length === 0 ? '[\n]' : `[\n    ${lines.join('\n    ,')}\n]`;
}

/** The istio-proxy env entries that describe the workload to the agent, shared with the envoy template. */
export function proxyEnv(ctx: TemplateContext): JsonObject[] {
  const { config, settings, workload, namespace } = ctx;
  const env: JsonObject[] = [];
  if (config.mesh.inboundTrafficPolicyMode === 'localhost') {
    env.push({ name: 'REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION', value: 'true' });
  }
  env.push(
    { name: 'PILOT_CERT_PROVIDER', value: 'istiod' },
    { name: 'CA_ADDR', value: istiodAddress(config) },
    fieldRef('POD_NAME', 'metadata.name'),
    fieldRef('POD_NAMESPACE', 'metadata.namespace'),
    fieldRef('INSTANCE_IP', 'status.podIP'),
    fieldRef('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
    fieldRef('HOST_IP', 'status.hostIP'),
    resourceRef('ISTIO_CPU_LIMIT', 'limits.cpu'),
    { name: 'PROXY_CONFIG', value: proxyConfigEnv(settings.proxyConfig) },
    { name: 'ISTIO_META_POD_PORTS', value: podPortsEnv(ctx.appContainers) },
    { name: 'ISTIO_META_APP_CONTAINERS', value: ctx.appContainers.map((c) => c.name).join(',') },
    resourceRef('GOMEMLIMIT', 'limits.memory'),
  );
  if (config.mesh.compliancePolicy) {
    env.push({ name: 'COMPLIANCE_POLICY', value: config.mesh.compliancePolicy });
    if (config.mesh.compliancePolicy === 'fips-140-3') env.push({ name: 'GODEBUG', value: 'fips140=only' });
  }
  env.push(
    { name: 'ISTIO_META_CLUSTER_ID', value: config.mesh.clusterName || 'Kubernetes' },
    fieldRef('ISTIO_META_NODE_NAME', 'spec.nodeName'),
    { name: 'ISTIO_META_INTERCEPTION_MODE', value: settings.interceptionMode },
  );
  const workloadName = own(ctx.labels, LABEL.workloadName) || workload.name;
  if (workloadName) env.push({ name: 'ISTIO_META_WORKLOAD_NAME', value: workloadName });
  if (workload.apiVersion && workload.name) {
    const plural = `${workload.kind.toLowerCase()}s`;
    env.push({
      name: 'ISTIO_META_OWNER',
      value: `kubernetes://apis/${workload.apiVersion}/namespaces/${namespace || 'default'}/${plural}/${workload.name}`,
    });
  }
  if (settings.bootstrapOverride !== undefined) {
    env.push({ name: 'ISTIO_BOOTSTRAP_OVERRIDE', value: '/etc/istio/custom-bootstrap/custom_bootstrap.json' });
  }
  const meshId = config.mesh.meshId || config.mesh.trustDomain;
  if (meshId) env.push({ name: 'ISTIO_META_MESH_ID', value: meshId });
  if (config.mesh.trustDomain) env.push({ name: 'TRUST_DOMAIN', value: config.mesh.trustDomain });
  env.push(...proxyMetadataEnv(settings.proxyConfig));
  return env;
}

const readinessHttpGet = (): JsonObject => ({ path: '/healthz/ready', port: PORTS.readiness });

function proxySecurityContext(ctx: TemplateContext): JsonObject {
  const { config, settings } = ctx;
  const metadata = settings.proxyConfig.proxyMetadata as StringMap | undefined;
  if (own(metadata, 'IPTABLES_TRACE_LOGGING') === 'true') {
    return {
      allowPrivilegeEscalation: true,
      capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] },
      privileged: true,
      readOnlyRootFilesystem: true,
      runAsGroup: ctx.proxyGid,
      runAsNonRoot: false,
      runAsUser: 0,
    };
  }
  const tproxy = settings.interceptionMode === 'TPROXY';
  const add: string[] = [];
  if (tproxy) add.push('NET_ADMIN');
  if (settings.capNetBindService) add.push('NET_BIND_SERVICE');
  const root = tproxy || settings.capNetBindService;
  return {
    allowPrivilegeEscalation: config.proxy.privileged,
    capabilities: add.length ? { add, drop: ['ALL'] } : { drop: ['ALL'] },
    privileged: config.proxy.privileged,
    readOnlyRootFilesystem: true,
    runAsGroup: root ? 1337 : ctx.proxyGid,
    runAsNonRoot: !root,
    runAsUser: root ? 0 : ctx.proxyUid,
  };
}

function proxyVolumeMounts(ctx: TemplateContext): JsonObject[] {
  const { settings, config } = ctx;
  const mounts: JsonObject[] = [
    { mountPath: '/var/run/secrets/workload-spiffe-uds', name: 'workload-socket' },
    { mountPath: '/var/run/secrets/credential-uds', name: 'credential-socket' },
    { mountPath: '/var/run/secrets/workload-spiffe-credentials', name: 'workload-certs' },
    { mountPath: '/var/run/secrets/istio', name: 'istiod-ca-cert' },
    { mountPath: '/var/run/secrets/istio/crl', name: 'istio-ca-crl' },
    { mountPath: '/var/lib/istio/data', name: 'istio-data' },
  ];
  if (settings.bootstrapOverride !== undefined) {
    mounts.push({ mountPath: '/etc/istio/custom-bootstrap', name: 'custom-bootstrap-volume' });
  }
  mounts.push(
    { mountPath: '/etc/istio/proxy', name: 'istio-envoy' },
    { mountPath: '/var/run/secrets/tokens', name: 'istio-token' },
  );
  if (config.proxy.mountMtlsCerts) mounts.push({ mountPath: '/etc/certs/', name: 'istio-certs', readOnly: true });
  mounts.push({ mountPath: '/etc/istio/pod', name: 'istio-podinfo' });
  for (const [name, spec] of Object.entries(settings.userVolumeMounts ?? {})) mounts.push({ ...spec, name });
  return mounts;
}

function proxyContainer(ctx: TemplateContext): JsonObject {
  const { config, settings, native } = ctx;
  const hold = !native && (settings.proxyConfig.holdApplicationUntilProxyStarts === true || config.proxy.holdApplicationUntilProxyStarts);
  const container: JsonObject = {
    name: PROXY_CONTAINER,
    image: imageRef(settings.proxyImage ?? config.images.proxy, config, settings.proxyImageType),
    args: [
      'proxy',
      'sidecar',
      '--domain',
      `$(POD_NAMESPACE).svc.${config.proxy.clusterDomain}`,
      `--proxyLogLevel=${settings.proxyLogLevel}`,
      `--proxyComponentLogLevel=${settings.proxyComponentLogLevel}`,
      `--log_output_level=${settings.agentLogLevel}`,
    ],
    ports: [{ containerPort: PORTS.envoyPrometheus, name: 'http-envoy-prom', protocol: 'TCP' }],
    env: proxyEnv(ctx),
  };
  if (config.images.pullPolicy) container.imagePullPolicy = config.images.pullPolicy;
  if (native) container.restartPolicy = 'Always';
  if (hold) {
    container.lifecycle = { postStart: { exec: { command: ['pilot-agent', 'wait'] } } };
  } else if (native) {
    // On pod shutdown, drain first; the agent gets SIGTERM once the application containers are gone.
    container.lifecycle = {
      preStop: { exec: { command: ['pilot-agent', 'request', `--debug-port=${settings.statusPort}`, 'POST', 'drain'] } },
    };
  }
  if (settings.statusPort !== 0) {
    const readiness: JsonObject = { failureThreshold: settings.readinessFailureThreshold, httpGet: readinessHttpGet() };
    if (settings.readinessInitialDelaySeconds > 0) readiness.initialDelaySeconds = settings.readinessInitialDelaySeconds;
    readiness.periodSeconds = settings.readinessPeriodSeconds;
    readiness.timeoutSeconds = 3;
    container.readinessProbe = readiness;
    if (config.proxy.startupProbe.enabled) {
      container.startupProbe = {
        failureThreshold: config.proxy.startupProbe.failureThreshold,
        httpGet: readinessHttpGet(),
        periodSeconds: 1,
        timeoutSeconds: 3,
      };
    }
  }
  container.resources = proxyResources(config, settings);
  container.securityContext = proxySecurityContext(ctx);
  container.volumeMounts = proxyVolumeMounts(ctx);
  return container;
}

function initContainer(ctx: TemplateContext): JsonObject {
  const { config, settings } = ctx;
  const cni = config.cni.enabled;
  const tproxy = settings.interceptionMode === 'TPROXY';
  const container: JsonObject = {
    name: cni ? VALIDATION_CONTAINER : INIT_CONTAINER,
    image: imageRef(settings.proxyImage ?? config.images.proxyInit, config, settings.proxyImageType),
    args: iptablesArgs(ctx),
  };
  if (config.images.pullPolicy) container.imagePullPolicy = config.images.pullPolicy;
  const metadataEnv = proxyMetadataEnv(settings.proxyConfig);
  if (metadataEnv.length) container.env = metadataEnv;
  container.resources = proxyResources(config, settings);
  // istio-iptables must run as root with NET_ADMIN and NET_RAW to install the redirect. With the CNI agent the
  // rules are installed by the node, and this container only validates them, unprivileged.
  container.securityContext = cni
    ? {
        allowPrivilegeEscalation: config.proxy.privileged,
        capabilities: { drop: ['ALL'] },
        privileged: config.proxy.privileged,
        readOnlyRootFilesystem: true,
        runAsGroup: tproxy ? 1337 : ctx.proxyGid,
        runAsNonRoot: true,
        runAsUser: tproxy ? 1337 : ctx.proxyUid,
      }
    : {
        allowPrivilegeEscalation: config.proxy.privileged,
        capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
        privileged: config.proxy.privileged,
        readOnlyRootFilesystem: false,
        runAsGroup: 0,
        runAsNonRoot: false,
        runAsUser: 0,
      };
  return container;
}

/** The volumes every proxy template needs after its workload sockets: bootstrap, Envoy, pod info, token, CA. */
export function agentVolumes(settings: InjectionSettings): JsonObject[] {
  const out: JsonObject[] = [];
  if (settings.bootstrapOverride !== undefined) {
    out.push({ configMap: { name: settings.bootstrapOverride }, name: 'custom-bootstrap-volume' });
  }
  out.push(
    { emptyDir: { medium: 'Memory' }, name: 'istio-envoy' },
    { emptyDir: {}, name: 'istio-data' },
    {
      downwardAPI: {
        items: [
          { fieldRef: { fieldPath: 'metadata.labels' }, path: 'labels' },
          { fieldRef: { fieldPath: 'metadata.annotations' }, path: 'annotations' },
        ],
      },
      name: 'istio-podinfo',
    },
    {
      name: 'istio-token',
      projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] },
    },
    { configMap: { name: 'istio-ca-root-cert' }, name: 'istiod-ca-cert' },
  );
  return out;
}

function volumes(ctx: TemplateContext): JsonObject[] {
  const { settings, config, spec } = ctx;
  // A volume with a name and no source is what istiod writes for these three; the API server defaults it to emptyDir.
  const out: JsonObject[] = [
    { name: 'workload-socket' },
    { name: 'credential-socket' },
    { name: 'workload-certs' },
    ...agentVolumes(settings),
    { configMap: { name: 'istio-ca-crl', optional: true }, name: 'istio-ca-crl' },
  ];
  if (config.proxy.mountMtlsCerts) {
    const account = typeof spec.serviceAccountName === 'string' && spec.serviceAccountName ? spec.serviceAccountName : 'default';
    out.push({ name: 'istio-certs', secret: { optional: true, secretName: `istio.${account}` } });
  }
  for (const [name, volume] of Object.entries(settings.userVolumes ?? {})) out.push({ ...volume, name });
  return out;
}

/** Istio's canonical service name: trunc 63, then trim "-", "_" and "." from both ends. */
export function canonicalName(labels: StringMap | undefined, workloadName: string): string {
  const name =
    own(labels, LABEL.canonicalName) || own(labels, 'app.kubernetes.io/name') || own(labels, 'app') || workloadName;
  return name.slice(0, 63).replace(/^[-_.]+|[-_.]+$/g, '');
}

export function canonicalRevision(labels: StringMap | undefined): string {
  return (
    own(labels, LABEL.canonicalRevision) || own(labels, 'app.kubernetes.io/version') || own(labels, 'version') || 'latest'
  );
}

/** Multus: istio-cni appended to the pod's networks, in the list or JSON form the pod already uses. */
function appendMultusNetwork(existing: string | undefined, network: string): string {
  if (existing === undefined || existing.trim() === '') return network;
  const trimmed = existing.trim();
  if (trimmed.startsWith('[') && trimmed.endsWith(']')) {
    try {
      const parsed = JSON.parse(trimmed) as Json[];
      if (parsed.some((n) => typeof n === 'object' && n !== null && !Array.isArray(n) && n.name === 'istio-cni')) {
        return existing;
      }
    } catch {
      return existing;
    }
    // Appended as text, as istiod does, so the user's own formatting is kept.
    return `${trimmed.slice(0, -1)}, {"name": "istio-cni", "namespace": "default"}]`;
  }
  if (trimmed.split(',').map((n) => n.trim()).includes(network)) return existing;
  return `${existing}, ${network}`;
}

/** The traffic annotations the CNI agent reads, as the sidecar template writes them when CNI is enabled. */
function cniAnnotations(ctx: TemplateContext): Record<string, string> {
  const { settings, config, annotations } = ctx;
  const out: Record<string, string> = {};
  if (config.cni.provider === 'multus') {
    out[ANNOTATION.multusNetworks] = appendMultusNetwork(own(annotations, ANNOTATION.multusNetworks), 'default/istio-cni');
  }
  out[ANNOTATION.interceptionMode] = settings.interceptionMode;
  if (settings.includeOutboundIPRanges) out[ANNOTATION.includeOutboundIPRanges] = settings.includeOutboundIPRanges;
  if (settings.excludeOutboundIPRanges) out[ANNOTATION.excludeOutboundIPRanges] = settings.excludeOutboundIPRanges;
  out[ANNOTATION.includeInboundPorts] = settings.includeInboundPorts;
  const status = String(settings.statusPort);
  const excluded = settings.excludeInboundPorts;
  out[ANNOTATION.excludeInboundPorts] =
    settings.statusPort === 0 || excluded.split(',').includes(status) ? excluded : excluded ? `${excluded},${status}` : status;
  if (settings.includeOutboundPorts !== undefined) out[ANNOTATION.includeOutboundPorts] = settings.includeOutboundPorts;
  if (settings.excludeOutboundPorts !== undefined) out[ANNOTATION.excludeOutboundPorts] = settings.excludeOutboundPorts;
  for (const name of [ANNOTATION.kubevirtInterfaces, ANNOTATION.rerouteVirtualInterfaces, ANNOTATION.excludeInterfaces]) {
    const value = own(annotations, name);
    if (value) out[name] = value;
  }
  return out;
}

export function sidecarTemplate(ctx: TemplateContext): PartialPod {
  const { config, settings, native, labels, annotations, appContainers } = ctx;
  const initContainers: JsonObject[] = [];
  const containers: JsonObject[] = [];
  if (settings.interceptionMode !== 'NONE') initContainers.push(initContainer(ctx));
  (native ? initContainers : containers).push(proxyContainer(ctx));

  const outLabels: Record<string, string> = { [LABEL.tlsMode]: own(labels, LABEL.tlsMode) || 'istio' };
  if (own(settings.proxyConfig.proxyMetadata as StringMap | undefined, 'ISTIO_META_ENABLE_HBONE') === 'true') {
    outLabels['networking.istio.io/tunnel'] = own(labels, 'networking.istio.io/tunnel') || 'http';
  }
  outLabels[LABEL.canonicalName] = canonicalName(labels, ctx.workload.name);
  outLabels[LABEL.canonicalRevision] = canonicalRevision(labels);

  const outAnnotations: Record<string, string> = { [ANNOTATION.rev]: ctx.revision };
  const firstApp = appContainers[0]?.name;
  if (typeof firstApp === 'string') {
    if (own(annotations, ANNOTATION.defaultLogsContainer) === undefined) {
      outAnnotations[ANNOTATION.defaultLogsContainer] = firstApp;
    }
    if (own(annotations, ANNOTATION.defaultContainer) === undefined) outAnnotations[ANNOTATION.defaultContainer] = firstApp;
  }
  if (config.cni.enabled) Object.assign(outAnnotations, cniAnnotations(ctx));

  const spec: JsonObject = {
    // Classic sidecars with interception NONE render an empty list, as istiod does.
    initContainers,
    containers,
    volumes: volumes(ctx),
  };
  if (config.images.pullSecrets.length) spec.imagePullSecrets = config.images.pullSecrets.map((name) => ({ name }));
  return { metadata: { labels: outLabels, annotations: outAnnotations }, spec };
}
