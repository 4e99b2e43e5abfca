// The injector's configuration: its shape, its defaults and its validation. Pure: callers read the file.
//
// The defaults reproduce what istiod's chart renders for the injector (values.yaml, injection-template.yaml), so
// a pod injected with the embedded default is the pod istiod would produce.

import type { JsonObject } from '../core/json.js';
import type { LabelSelector } from '../core/labels.js';
import { proxyConfigProblems } from '../core/proxy-config.js';
import { ConfigError } from '../errors.js';

/** Resource name -> quantity; null removes a default, as Istio's omitNil does for chart values. */
export type ResourceList = Record<string, string | null>;

/**
 * A template an operator adds in the config file: a partial pod merged onto the pod with Kubernetes' strategic
 * merge (containers, volumes and env by name). `eachContainer` is merged into every application container.
 */
export interface OperatorTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  eachContainer?: Record<string, unknown>;
}

export interface InjectorConfig {
  /** This server's revision; "" is the default (unnamed) revision, as in Istio. */
  revision: string;
  /** Revision tags this server also answers for (namespace or pod label istio.io/rev=<tag>). */
  tags: string[];
  /** Namespace of istiod; with the revision it gives the discovery and CA address. */
  istioNamespace: string;
  /** enabled: inject unless a pod opts out; disabled: only pods that opt in (Istio's values.global.proxy.autoInject). */
  policy: 'enabled' | 'disabled';
  /** Istio's `auto` webhook: inject in every namespace without istio-injection or istio.io/rev labels. */
  enableNamespacesByDefault: boolean;
  neverInjectSelector: LabelSelector[];
  alwaysInjectSelector: LabelSelector[];
  /** istio-proxy as a Kubernetes native sidecar (init container, restartPolicy Always), as current Istio does. */
  nativeSidecars: boolean;
  /** Templates applied when a pod does not name its own in inject.istio.io/templates. */
  defaultTemplates: string[];
  /** Templates the operator adds, by name, beside the built-in sidecar, gateway, grpc-simple and grpc-agent. */
  templates: Record<string, OperatorTemplate>;
  /** Annotations added to every injected pod (Istio's sidecarInjectorWebhook.injectedAnnotations). */
  injectedAnnotations: Record<string, string>;
  /** Rewrite application probes to the agent (sidecar.istio.io/rewriteAppHTTPProbers overrides per pod). */
  rewriteAppHTTPProbe: boolean;
  /**
   * Mesh-wide ProxyConfig defaults (Istio's meshConfig.defaultConfig): drainDuration, interceptionMode,
   * proxyMetadata, tracing, holdApplicationUntilProxyStarts, ... The pod's proxy.istio.io/config overrides them.
   */
  proxyConfig: JsonObject;
  /** With the Istio CNI node agent, istio-init becomes the unprivileged istio-validation. */
  cni: { enabled: boolean; provider: 'default' | 'multus' };
  /** "openshift": the proxy's uid and gid come from the namespace's assigned range. */
  platform: '' | 'openshift';
  /** Namespace labels used when the server has no cluster access: namespace name -> labels. */
  namespaces: Record<string, Record<string, string>>;
  images: {
    /** Registry prefix for an image given without a '/', as Istio's global.hub. */
    hub: string;
    tag: string;
    proxy: string;
    proxyInit: string;
    /** Always, IfNotPresent or Never; unset leaves Kubernetes' default. */
    pullPolicy: string;
    pullSecrets: string[];
  };
  proxy: {
    resources: { requests: ResourceList; limits: ResourceList };
    statusPort: number;
    logLevel: string;
    componentLogLevel: string;
    clusterDomain: string;
    includeIPRanges: string;
    excludeIPRanges: string;
    includeInboundPorts: string;
    excludeInboundPorts: string;
    includeOutboundPorts: string;
    excludeOutboundPorts: string;
    readinessInitialDelaySeconds: number;
    readinessPeriodSeconds: number;
    readinessFailureThreshold: number;
    startupProbe: { enabled: boolean; failureThreshold: number };
    holdApplicationUntilProxyStarts: boolean;
    privileged: boolean;
    capNetBindService: boolean;
    /** Mount the istio.<service account> secret at /etc/certs (Istio's global.mountMtlsCerts). */
    mountMtlsCerts: boolean;
  };
  mesh: {
    trustDomain: string;
    meshId: string;
    clusterName: string;
    network: string;
    /** Merge the application's Prometheus metrics into the agent's (Istio's enablePrometheusMerge). */
    enablePrometheusMerge: boolean;
    /** "localhost" keeps the legacy behaviour of sending inbound traffic to localhost. */
    inboundTrafficPolicyMode: 'passthrough' | 'localhost';
    /** "fips-140-3" restricts the proxy to FIPS-approved crypto. */
    compliancePolicy: string;
  };
  /** pilot-agent's and istio-iptables' log level, as Istio's values.global.logging.level. */
  agentLogLevel: string;
}

export const DEFAULT_CONFIG: InjectorConfig = Object.freeze({
  revision: '',
  tags: [],
  istioNamespace: 'istio-system',
  policy: 'enabled',
  enableNamespacesByDefault: false,
  neverInjectSelector: [],
  alwaysInjectSelector: [],
  nativeSidecars: true,
  defaultTemplates: ['sidecar'],
  templates: {},
  injectedAnnotations: {},
  rewriteAppHTTPProbe: true,
  proxyConfig: {},
  cni: { enabled: false, provider: 'default' },
  platform: '',
  namespaces: {},
  images: {
    hub: 'docker.io/istio',
    tag: '1.28.0',
    proxy: 'proxyv2',
    proxyInit: 'proxyv2',
    pullPolicy: '',
    pullSecrets: [],
  },
  proxy: {
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2', memory: '1Gi' } },
    statusPort: 15020,
    logLevel: 'warning',
    componentLogLevel: 'misc:error',
    clusterDomain: 'cluster.local',
    includeIPRanges: '*',
    excludeIPRanges: '',
    includeInboundPorts: '*',
    excludeInboundPorts: '',
    includeOutboundPorts: '',
    excludeOutboundPorts: '',
    readinessInitialDelaySeconds: 0,
    readinessPeriodSeconds: 15,
    readinessFailureThreshold: 4,
    startupProbe: { enabled: true, failureThreshold: 600 },
    holdApplicationUntilProxyStarts: false,
    privileged: false,
    capNetBindService: false,
    mountMtlsCerts: false,
  },
  mesh: {
    trustDomain: 'cluster.local',
    meshId: '',
    clusterName: 'Kubernetes',
    network: '',
    enablePrometheusMerge: true,
    inboundTrafficPolicyMode: 'passthrough',
    compliancePolicy: '',
  },
  agentLogLevel: 'default:info',
} satisfies InjectorConfig);

// ---- validation ----------------------------------------------------------------------------------------------
// A small schema walker instead of a validation library: every error names the full key path
// (`proxy.statusPort`) and what is accepted, and unknown keys are refused so a typo never silently does nothing.

type Check = (value: unknown, path: string) => unknown;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const fail = (path: string, expected: string, value: unknown): never => {
  throw new ConfigError(`${path}: expected ${expected}, got ${JSON.stringify(value) ?? String(value)}`);
};

const str: Check = (v, p) => (typeof v === 'string' ? v : fail(p, 'a string', v));
const bool: Check = (v, p) => (typeof v === 'boolean' ? v : fail(p, 'true or false', v));
const int =
  (min: number, max: number): Check =>
  (v, p) =>
    Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? v : fail(p, `an integer ${min}..${max}`, v);
const oneOf =
  (...allowed: string[]): Check =>
  (v, p) =>
    typeof v === 'string' && allowed.includes(v) ? v : fail(p, `one of ${allowed.join(', ')}`, v);
const listOf =
  (item: Check): Check =>
  (v, p) =>
    Array.isArray(v) ? v.map((x, i) => item(x, `${p}[${i}]`)) : fail(p, 'a list', v);
const mapOf =
  (item: Check): Check =>
  (v, p) => {
    if (!isPlainObject(v)) return fail(p, 'a map', v);
    const out: Record<string, unknown> = Object.create(null);
    for (const [k, x] of Object.entries(v)) out[k] = item(x, `${p}.${k}`);
    return out;
  };
// Objects are merged over their defaults key by key, so a file sets only what it changes.
const object =
  (shape: Record<string, Check>): Check =>
  (v, p) => {
    if (!isPlainObject(v)) return fail(p, 'a map', v);
    for (const k of Object.keys(v)) {
      if (!Object.hasOwn(shape, k)) {
        throw new ConfigError(`${p ? `${p}.` : ''}${k}: unknown key (known: ${Object.keys(shape).join(', ')})`);
      }
    }
    const out: Record<string, unknown> = {};
    for (const [k, check] of Object.entries(shape)) {
      if (Object.hasOwn(v, k)) out[k] = check(v[k], p ? `${p}.${k}` : k);
    }
    return out;
  };

const labelSelector: Check = (v, p) => {
  const checked = object({
    matchLabels: mapOf(str),
    matchExpressions: listOf(
      object({ key: str, operator: oneOf('In', 'NotIn', 'Exists', 'DoesNotExist'), values: listOf(str) }),
    ),
  })(v, p) as LabelSelector;
  for (const [i, e] of (checked.matchExpressions ?? []).entries()) {
    if (e.key === undefined || e.operator === undefined) fail(`${p}.matchExpressions[${i}]`, 'key and operator', e);
  }
  return checked;
};

const quantity: Check = (v, p) =>
  v === null || (typeof v === 'string' && /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.test(v))
    ? v
    : fail(p, 'a Kubernetes quantity such as 100m or 128Mi (as a string), or null to drop a default', v);
const anyMap: Check = (v, p) => (isPlainObject(v) ? v : fail(p, 'a map', v));
const proxyConfigCheck: Check = (v, p) => {
  if (!isPlainObject(v)) return fail(p, 'a ProxyConfig map', v);
  const problems = proxyConfigProblems(v as JsonObject, p);
  if (problems.length) throw new ConfigError(problems.join('; '));
  return v;
};
const operatorTemplate: Check = object({
  metadata: object({ labels: mapOf(str), annotations: mapOf(str) }),
  spec: anyMap,
  eachContainer: anyMap,
});

const revisionName: Check = (v, p) =>
  typeof v === 'string' && /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)?$/.test(v)
    ? v
    : fail(p, 'a revision name (lowercase letters, digits and "-", at most 63 characters)', v);

const schema = object({
  revision: revisionName,
  tags: listOf(revisionName),
  istioNamespace: str,
  policy: oneOf('enabled', 'disabled'),
  enableNamespacesByDefault: bool,
  neverInjectSelector: listOf(labelSelector),
  alwaysInjectSelector: listOf(labelSelector),
  nativeSidecars: bool,
  defaultTemplates: listOf(str),
  templates: mapOf(operatorTemplate),
  injectedAnnotations: mapOf(str),
  rewriteAppHTTPProbe: bool,
  proxyConfig: proxyConfigCheck,
  cni: object({ enabled: bool, provider: oneOf('default', 'multus') }),
  platform: oneOf('', 'openshift'),
  namespaces: mapOf(mapOf(str)),
  images: object({
    hub: str,
    tag: str,
    proxy: str,
    proxyInit: str,
    pullPolicy: oneOf('', 'Always', 'IfNotPresent', 'Never'),
    pullSecrets: listOf(str),
  }),
  proxy: object({
    resources: object({ requests: mapOf(quantity), limits: mapOf(quantity) }),
    statusPort: int(0, 65535),
    logLevel: oneOf('trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'),
    componentLogLevel: str,
    clusterDomain: str,
    includeIPRanges: str,
    excludeIPRanges: str,
    includeInboundPorts: str,
    excludeInboundPorts: str,
    includeOutboundPorts: str,
    excludeOutboundPorts: str,
    readinessInitialDelaySeconds: int(0, 2 ** 31 - 1),
    readinessPeriodSeconds: int(1, 2 ** 31 - 1),
    readinessFailureThreshold: int(1, 2 ** 31 - 1),
    startupProbe: object({ enabled: bool, failureThreshold: int(1, 2 ** 31 - 1) }),
    holdApplicationUntilProxyStarts: bool,
    privileged: bool,
    capNetBindService: bool,
    mountMtlsCerts: bool,
  }),
  mesh: object({
    trustDomain: str,
    meshId: str,
    clusterName: str,
    network: str,
    enablePrometheusMerge: bool,
    inboundTrafficPolicyMode: oneOf('passthrough', 'localhost'),
    compliancePolicy: oneOf('', 'fips-140-3'),
  }),
  agentLogLevel: str,
});

const REPLACED_WHOLE = new Set(['namespaces', 'templates', 'proxyConfig', 'injectedAnnotations']);

function mergeOver<T>(base: T, override: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(override)) return override as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) {
    // Maps keyed by user data replace the default whole; resources merge so that null can drop one default.
    out[k] = REPLACED_WHOLE.has(k) ? v : mergeOver((base as Record<string, unknown>)[k], v);
  }
  return out as T;
}

/** Validates a parsed config document (null or {} mean "all defaults") and merges it over the defaults. */
export function resolveConfig(document: unknown): InjectorConfig {
  if (document === null || document === undefined) return DEFAULT_CONFIG;
  const checked = schema(document, '');
  const merged = mergeOver(DEFAULT_CONFIG, checked);
  if (merged.revision === 'default') merged.revision = '';
  return merged;
}

/** The revision as written on pods and matched in selectors: "default" for the unnamed revision. */
export const revisionLabel = (config: Pick<InjectorConfig, 'revision'>): string => config.revision || 'default';
