// Every pod annotation the sidecar template reads, validated once into a typed view.
//
// Validation follows istiod's validate.go (istio-injector.md §4.1): each bad value is reported, all at once, with
// the annotation, the value and what is accepted; any error refuses the pod. We test for presence before
// parsing: a thrown and caught error on the hot path costs tens of microseconds.

import { isIP } from 'node:net';
import type { InjectorConfig } from '../config/schema.js';
import { AnnotationError } from '../errors.js';
import { ANNOTATION } from './constants.js';
import { isObject, type JsonObject, MAX_MERGED_JSON_DEPTH, nestedDeeperThan } from './json.js';
import { own, type StringMap } from './labels.js';
import { applyProxyConfigAnnotation, parseProxyConfigAnnotation, type ProxyConfig } from './proxy-config.js';

export type InterceptionMode = 'REDIRECT' | 'TPROXY' | 'NONE';

/** The values the sidecar template uses, after annotations are applied over the config. */
export interface InjectionSettings {
  interceptionMode: InterceptionMode;
  statusPort: number;
  includeOutboundIPRanges: string;
  excludeOutboundIPRanges: string;
  includeInboundPorts: string;
  excludeInboundPorts: string;
  /** undefined: no -q/-o argument at all (Istio emits them only when set). */
  includeOutboundPorts: string | undefined;
  excludeOutboundPorts: string | undefined;
  /** -k: reroute-virtual-interfaces, else the deprecated kubevirtInterfaces. */
  rerouteVirtualInterfaces: string | undefined;
  excludeInterfaces: string | undefined;
  readinessInitialDelaySeconds: number;
  readinessPeriodSeconds: number;
  readinessFailureThreshold: number;
  /** Set when any proxyCPU/proxyMemory(Limit) annotation is present: then only the annotated values apply. */
  resourceOverride: { requests: Record<string, string>; limits: Record<string, string> } | undefined;
  proxyImage: string | undefined;
  proxyLogLevel: string;
  proxyComponentLogLevel: string;
  agentLogLevel: string;
  /** undefined: follow the config. */
  nativeSidecar: boolean | undefined;
  /** The effective ProxyConfig: mesh defaults with the proxy.istio.io/config annotation applied. */
  proxyConfig: ProxyConfig;
  proxyImageType: string | undefined;
  capNetBindService: boolean;
  /** Name of a ConfigMap holding a custom bootstrap. */
  bootstrapOverride: string | undefined;
  userVolumes: Record<string, JsonObject> | undefined;
  userVolumeMounts: Record<string, JsonObject> | undefined;
  /** Templates named by inject.istio.io/templates; undefined: the config's default templates. */
  templates: string[] | undefined;
  warnings: string[];
}

const PORT_MAX = 65535;
const UINT32_MAX = 4294967295;

function parsePort(item: string): number | undefined {
  const trimmed = item.trim();
  if (!/^[0-9]{1,5}$/.test(trimmed)) return undefined;
  const port = Number(trimmed);
  return port <= PORT_MAX ? port : undefined;
}

/** A comma-separated port list; empty is allowed, empty items are not. Returns the problem or undefined. */
function checkPortList(value: string, allowWildcard: boolean): string | undefined {
  if (value === '' || (allowWildcard && value.trim() === '*')) return undefined;
  for (const item of value.split(',')) {
    if (parsePort(item) === undefined) {
      return `"${item}" is not a port (0-65535); expected a comma-separated list of ports${allowWildcard ? ' or "*"' : ''}`;
    }
  }
  return undefined;
}

function isCidr(item: string): boolean {
  const slash = item.indexOf('/');
  if (slash < 0) return false;
  const address = item.slice(0, slash);
  const bits = item.slice(slash + 1);
  const family = isIP(address);
  if (family === 0 || !/^[0-9]{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

function checkCidrList(value: string, allowWildcard: boolean): string | undefined {
  if (value === '' || (allowWildcard && value === '*')) return undefined;
  for (const item of value.split(',')) {
    if (!isCidr(item)) {
      return `"${item}" is not a CIDR such as 10.0.0.0/8; expected a comma-separated list of CIDRs${allowWildcard ? ' or "*"' : ''}`;
    }
  }
  return undefined;
}

function checkInterfaceNames(value: string): string | undefined {
  if (value === '') return undefined;
  for (const raw of value.split(',')) {
    const name = raw.trim();
    if (name === '') return 'empty interface name in the list';
    if (name.length > 15) return `interface name "${name}" is too long (at most 15 characters)`;
    if (!/^[a-zA-Z][a-zA-Z0-9_.-]*$/.test(name)) return `interface name "${name}" contains invalid characters`;
  }
  return undefined;
}

function checkUint(value: string, max: number): string | undefined {
  return /^[0-9]+$/.test(value) && Number(value) <= max ? undefined : `expected an integer 0..${max}`;
}

// Kubernetes' resource.Quantity grammar: a signed decimal number with an optional exponent or suffix.
const QUANTITY = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?$/;

function checkQuantity(value: string): string | undefined {
  if (/[\x00-\x1f\x7f]/.test(value)) return 'the value contains control characters';
  return QUANTITY.test(value) ? undefined : 'expected a Kubernetes quantity such as 100m, 2, 128Mi or 1Gi';
}

const INTERCEPTION_MODES: readonly string[] = ['REDIRECT', 'TPROXY', 'NONE'];

type Validator = (value: string) => string | undefined;

const istioName = (setting: string, problem: string | undefined) => (problem ? `${setting} invalid: ${problem}` : undefined);

/** The annotations istiod validates, with their validators (validate.go's AnnotationValidation). */
const VALIDATORS: ReadonlyArray<[string, Validator]> = [
  [ANNOTATION.interceptionMode, (v) => (INTERCEPTION_MODES.includes(v) ? undefined : 'expected REDIRECT, TPROXY or NONE')],
  [ANNOTATION.statusPort, (v) => (parsePort(v) === undefined ? 'expected a port 0..65535' : undefined)],
  [ANNOTATION.readinessInitialDelaySeconds, (v) => checkUint(v, UINT32_MAX)],
  [ANNOTATION.readinessPeriodSeconds, (v) => checkUint(v, UINT32_MAX)],
  [ANNOTATION.readinessFailureThreshold, (v) => checkUint(v, UINT32_MAX)],
  // Each message also names the istio-iptables setting, as istiod's does (includeIPRanges, ...).
  [ANNOTATION.includeOutboundIPRanges, (v) => istioName('includeIPRanges', checkCidrList(v, true))],
  [ANNOTATION.excludeOutboundIPRanges, (v) => istioName('excludeIPRanges', checkCidrList(v, false))],
  [ANNOTATION.includeInboundPorts, (v) => istioName('includeInboundPorts', checkPortList(v, true))],
  [ANNOTATION.excludeInboundPorts, (v) => istioName('excludeInboundPorts', checkPortList(v, false))],
  [ANNOTATION.excludeOutboundPorts, (v) => istioName('excludeOutboundPorts', checkPortList(v, false))],
  [ANNOTATION.excludeInterfaces, checkInterfaceNames],
  [ANNOTATION.kubevirtInterfaces, checkInterfaceNames],
  [ANNOTATION.rerouteVirtualInterfaces, checkInterfaceNames],
  [ANNOTATION.proxyCPU, checkQuantity],
  [ANNOTATION.proxyMemory, checkQuantity],
  [ANNOTATION.proxyCPULimit, checkQuantity],
  [ANNOTATION.proxyMemoryLimit, checkQuantity],
];

/** Go's strconv.ParseBool. */
export function parseBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return undefined;
}

/** A JSON object of name -> spec (userVolume, userVolumeMount); the problem when it is not one. */
function parseNamedSpecs(value: string): Record<string, JsonObject> | string {
  let parsed: unknown;
  if (!value.trimStart().startsWith('{')) return 'expected a JSON object mapping names to specs';
  try {
    parsed = JSON.parse(value);
  } catch {
    return 'expected a JSON object mapping names to specs (not valid JSON)';
  }
  if (!isObject(parsed) || Object.values(parsed).some((v) => !isObject(v))) {
    return 'expected a JSON object mapping names to specs';
  }
  if (nestedDeeperThan(parsed, MAX_MERGED_JSON_DEPTH)) return `nested deeper than ${MAX_MERGED_JSON_DEPTH} levels`;
  return parsed as Record<string, JsonObject>;
}

const DEPRECATED: ReadonlyArray<[string, string]> = [
  [ANNOTATION.kubevirtInterfaces, `is deprecated: use ${ANNOTATION.rerouteVirtualInterfaces}`],
  [ANNOTATION.enableCoreDump, 'is ignored: the sidecar template no longer adds a core dump init container'],
  [ANNOTATION.readinessApplicationPorts, 'is ignored by the current sidecar template'],
];

/**
 * Validates the pod's annotations and resolves the settings over the config and the mesh ProxyConfig; throws
 * AnnotationError listing every problem. Warnings are for values that are accepted but ignored or deprecated.
 */
export function readSettings(
  annotations: StringMap | undefined,
  config: InjectorConfig,
  meshProxyConfig: ProxyConfig,
): InjectionSettings {
  const problems: string[] = [];
  const warnings: string[] = [];
  const refuse = (name: string, value: string, problem: string) =>
    problems.push(`annotation ${name}: invalid value ${JSON.stringify(value)}: ${problem}`);
  const a = (name: string) => own(annotations, name);
  if (annotations) {
    for (const [name, validate] of VALIDATORS) {
      const value = a(name);
      if (value === undefined) continue;
      const problem = validate(value);
      if (problem !== undefined) refuse(name, value, problem);
    }
    for (const [name, note] of DEPRECATED) if (a(name) !== undefined) warnings.push(`annotation ${name} ${note}`);
    if (own(annotations, ANNOTATION.inject) !== undefined) {
      warnings.push(`annotation ${ANNOTATION.inject} is deprecated: use the label of the same name`);
    }
  }
  let proxyConfig = meshProxyConfig;
  const proxyConfigText = a(ANNOTATION.proxyConfig);
  if (proxyConfigText !== undefined) {
    const parsed = parseProxyConfigAnnotation(proxyConfigText, ANNOTATION.proxyConfig);
    if (Array.isArray(parsed)) problems.push(...parsed);
    else proxyConfig = applyProxyConfigAnnotation(meshProxyConfig, parsed);
  }
  const specs = (name: string): Record<string, JsonObject> | undefined => {
    const value = a(name);
    if (value === undefined) return undefined;
    const parsed = parseNamedSpecs(value);
    if (typeof parsed === 'string') {
      refuse(name, value, parsed);
      return undefined;
    }
    return parsed;
  };
  const userVolumes = specs(ANNOTATION.userVolume);
  const userVolumeMounts = specs(ANNOTATION.userVolumeMount);
  const templates = a(ANNOTATION.templates);
  const mergeMetrics = a(ANNOTATION.mergeMetrics);
  if (mergeMetrics !== undefined && parseBool(mergeMetrics) === undefined) {
    refuse(ANNOTATION.mergeMetrics, mergeMetrics, 'expected true or false');
  }
  const imageType = a(ANNOTATION.proxyImageType);
  if (imageType !== undefined && !/^[a-z0-9-]*$/.test(imageType)) {
    refuse(ANNOTATION.proxyImageType, imageType, 'expected an image variant such as default, debug or distroless');
  }
  if (problems.length > 0) throw new AnnotationError(problems);

  const num = (name: string, fallback: number) => {
    const v = a(name);
    return v === undefined ? fallback : Number(v.trim());
  };
  const proxy = config.proxy;
  let resourceOverride: InjectionSettings['resourceOverride'];
  const cpu = a(ANNOTATION.proxyCPU);
  const memory = a(ANNOTATION.proxyMemory);
  const cpuLimit = a(ANNOTATION.proxyCPULimit);
  const memoryLimit = a(ANNOTATION.proxyMemoryLimit);
  if (cpu !== undefined || memory !== undefined || cpuLimit !== undefined || memoryLimit !== undefined) {
    resourceOverride = { requests: {}, limits: {} };
    if (cpu !== undefined) resourceOverride.requests.cpu = cpu;
    if (memory !== undefined) resourceOverride.requests.memory = memory;
    if (cpuLimit !== undefined) resourceOverride.limits.cpu = cpuLimit;
    if (memoryLimit !== undefined) resourceOverride.limits.memory = memoryLimit;
  }
  const native = a(ANNOTATION.nativeSidecar);
  const annotatedInterception = a(ANNOTATION.interceptionMode) as InterceptionMode | undefined;
  return {
    proxyConfig,
    interceptionMode: annotatedInterception ?? ((proxyConfig.interceptionMode as InterceptionMode | undefined) ?? 'REDIRECT'),
    statusPort: num(ANNOTATION.statusPort, proxy.statusPort),
    includeOutboundIPRanges: a(ANNOTATION.includeOutboundIPRanges) ?? proxy.includeIPRanges,
    excludeOutboundIPRanges: a(ANNOTATION.excludeOutboundIPRanges) ?? proxy.excludeIPRanges,
    includeInboundPorts: a(ANNOTATION.includeInboundPorts) ?? proxy.includeInboundPorts,
    excludeInboundPorts: a(ANNOTATION.excludeInboundPorts) ?? proxy.excludeInboundPorts,
    includeOutboundPorts: a(ANNOTATION.includeOutboundPorts) ?? (proxy.includeOutboundPorts || undefined),
    excludeOutboundPorts: a(ANNOTATION.excludeOutboundPorts) ?? (proxy.excludeOutboundPorts || undefined),
    rerouteVirtualInterfaces: a(ANNOTATION.rerouteVirtualInterfaces) ?? a(ANNOTATION.kubevirtInterfaces),
    excludeInterfaces: a(ANNOTATION.excludeInterfaces),
    readinessInitialDelaySeconds: num(ANNOTATION.readinessInitialDelaySeconds, proxy.readinessInitialDelaySeconds),
    readinessPeriodSeconds: num(ANNOTATION.readinessPeriodSeconds, proxy.readinessPeriodSeconds),
    readinessFailureThreshold: num(ANNOTATION.readinessFailureThreshold, proxy.readinessFailureThreshold),
    resourceOverride,
    proxyImage: a(ANNOTATION.proxyImage),
    proxyImageType: imageType,
    proxyLogLevel: a(ANNOTATION.logLevel) ?? proxy.logLevel,
    proxyComponentLogLevel: a(ANNOTATION.componentLogLevel) ?? proxy.componentLogLevel,
    agentLogLevel: a(ANNOTATION.agentLogLevel) ?? config.agentLogLevel,
    // Istio's template: any non-empty value other than "false" means native.
    nativeSidecar: native === undefined || native === '' ? undefined : native !== 'false',
    capNetBindService: (a(ANNOTATION.capNetBindService) ?? String(proxy.capNetBindService)) === 'true',
    bootstrapOverride: a(ANNOTATION.bootstrapOverride),
    userVolumes,
    userVolumeMounts,
    templates: templates === undefined ? undefined : templates.split(',').map((t) => t.trim()).filter(Boolean),
    warnings,
  };
}
