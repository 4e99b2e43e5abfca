// The proxy's ProxyConfig: Istio's defaults, then the mesh-wide defaults from our config (meshConfig.defaultConfig
// in Istio), then the pod's proxy.istio.io/config annotation (istio-injector.md §1.3 step 5, §5). The agent
// receives only the fields that differ from Istio's defaults, in PROXY_CONFIG.

import { parse } from 'yaml';
import type { InjectorConfig } from '../config/schema.js';
import { PORTS } from './constants.js';
import { isObject, jsonEqual, type Json, type JsonObject } from './json.js';
import { copyOf, defineOwn } from './merge.js';

/** ProxyConfig fields in protobuf field-number order, which is the order protojson writes them in. */
const FIELD_ORDER = [
  'configPath', 'binaryPath', 'serviceCluster', 'drainDuration', 'parentShutdownDuration', 'discoveryAddress',
  'discoveryRefreshDelay', 'zipkinAddress', 'connectTimeout', 'statsdUdpAddress', 'envoyMetricsServiceAddress',
  'proxyAdminPort', 'availabilityZone', 'controlPlaneAuthPolicy', 'customConfigFile', 'statNameLength', 'concurrency',
  'proxyBootstrapTemplatePath', 'interceptionMode', 'tracing', 'sds', 'envoyAccessLogService', 'envoyMetricsService',
  'proxyMetadata', 'runtimeValues', 'statusPort', 'extraStatTags', 'gatewayTopology', 'terminationDrainDuration',
  'meshId', 'readinessProbe', 'proxyStatsMatcher', 'holdApplicationUntilProxyStarts', 'caCertificatesPem', 'image',
  'privateKeyProvider', 'proxyHeaders', 'fileFlushInterval', 'fileFlushMinSizeKb',
] as const;
const KNOWN_FIELDS: ReadonlySet<string> = new Set(FIELD_ORDER);

/** mesh.DefaultProxyConfig(): PROXY_CONFIG leaves out every field equal to these. */
export const ISTIO_DEFAULT_PROXY_CONFIG: Readonly<JsonObject> = Object.freeze({
  configPath: './etc/istio/proxy',
  binaryPath: '/usr/local/bin/envoy',
  serviceCluster: 'istio-proxy',
  drainDuration: '45s',
  terminationDrainDuration: '5s',
  discoveryAddress: `istiod.istio-system.svc:${PORTS.istiodTls}`,
  proxyAdminPort: PORTS.envoyAdmin,
  controlPlaneAuthPolicy: 'MUTUAL_TLS',
  statNameLength: 189,
  statusPort: PORTS.agentStatus,
  concurrency: 2,
  interceptionMode: 'REDIRECT',
  tracing: { zipkin: { address: 'zipkin.istio-system:9411' } },
});

export type ProxyConfig = JsonObject;

/** Map fields merge entry by entry; every other field, messages included, is replaced (`tracing: {}` clears). */
const MAP_FIELDS: ReadonlySet<string> = new Set(['proxyMetadata', 'runtimeValues']);

function mergeProto(base: JsonObject, overlay: JsonObject): JsonObject {
  const out = copyOf(base);
  for (const key of Object.keys(overlay)) {
    const value = overlay[key];
    const current = out[key];
    defineOwn(out, key, MAP_FIELDS.has(key) && isObject(value) && isObject(current) ? { ...current, ...value } : value);
  }
  return out;
}

const DURATION = /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;
const ENUMS: Record<string, readonly string[]> = {
  interceptionMode: ['REDIRECT', 'TPROXY', 'NONE'],
  controlPlaneAuthPolicy: ['NONE', 'MUTUAL_TLS', 'INHERIT'],
};

/** The problems with a ProxyConfig document, each naming its field; empty when it is valid. */
export function proxyConfigProblems(value: JsonObject, where: string): string[] {
  const problems: string[] = [];
  for (const [key, field] of Object.entries(value)) {
    if (!KNOWN_FIELDS.has(key)) {
      problems.push(`${where}: unknown field "${key}"`);
      continue;
    }
    if (/Duration$|Delay$|Timeout$|connectTimeout|fileFlushInterval/.test(key) && (typeof field !== 'string' || !DURATION.test(field))) {
      problems.push(`${where}: ${key} must be a duration such as "45s", got ${JSON.stringify(field)}`);
    }
    if (key in ENUMS && !(ENUMS[key] as readonly string[]).includes(field as string)) {
      problems.push(`${where}: ${key} must be one of ${(ENUMS[key] as readonly string[]).join(', ')}, got ${JSON.stringify(field)}`);
    }
    if (['concurrency', 'statNameLength'].includes(key) && (!Number.isInteger(field) || (field as number) < 0)) {
      problems.push(`${where}: ${key} must be a non-negative integer, got ${JSON.stringify(field)}`);
    }
    if (['proxyAdminPort', 'statusPort'].includes(key) && (!Number.isInteger(field) || (field as number) < 1 || (field as number) > 65535)) {
      problems.push(`${where}: ${key} must be a port 1..65535, got ${JSON.stringify(field)}`);
    }
    const port = typeof field === 'string' ? /^[^:\s]+:([0-9]{1,5})$/.exec(field)?.[1] : undefined;
    if (key === 'discoveryAddress' && (port === undefined || Number(port) > 65535)) {
      problems.push(`${where}: discoveryAddress must be host:port, got ${JSON.stringify(field)}`);
    }
    if (key === 'holdApplicationUntilProxyStarts' && typeof field !== 'boolean') {
      problems.push(`${where}: holdApplicationUntilProxyStarts must be true or false, got ${JSON.stringify(field)}`);
    }
    if (key === 'proxyMetadata' && (!isObject(field) || Object.values(field).some((v) => typeof v !== 'string'))) {
      problems.push(`${where}: proxyMetadata must map names to strings`);
    }
  }
  return problems;
}

/**
 * Parses the proxy.istio.io/config annotation (YAML or JSON). Returns the document or the problems with it.
 */
export function parseProxyConfigAnnotation(text: string, annotation: string): JsonObject | string[] {
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    return [`annotation ${annotation}: invalid value: not YAML or JSON (${(error as Error).message.split('\n')[0]})`];
  }
  if (document === null || document === undefined) return {};
  if (!isObject(document)) return [`annotation ${annotation}: invalid value: expected a ProxyConfig map`];
  const problems = proxyConfigProblems(document, `annotation ${annotation}`);
  return problems.length ? problems : document;
}

/** The mesh-wide ProxyConfig of a revision: Istio's defaults, its discovery address, the config's defaults. */
export function meshProxyConfig(config: InjectorConfig, discoveryAddress: string): ProxyConfig {
  return mergeProto(mergeProto(ISTIO_DEFAULT_PROXY_CONFIG as JsonObject, { discoveryAddress }), config.proxyConfig);
}

export function applyProxyConfigAnnotation(mesh: ProxyConfig, annotation: JsonObject | undefined): ProxyConfig {
  return annotation ? mergeProto(mesh, annotation) : mesh;
}

function sortedKeys(map: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const key of Object.keys(map).sort()) defineOwn(out, key, map[key]);
  return out;
}

/** PROXY_CONFIG: the fields that differ from Istio's defaults, in field order, with istiod's trailing newline. */
export function proxyConfigEnv(proxyConfig: ProxyConfig): string {
  const out: JsonObject = {};
  const emit = (key: string) => {
    const value = proxyConfig[key];
    if (value === undefined || Object.hasOwn(out, key)) return;
    if (Object.hasOwn(ISTIO_DEFAULT_PROXY_CONFIG, key) && jsonEqual(value, ISTIO_DEFAULT_PROXY_CONFIG[key])) return;
    if (isObject(value) && Object.keys(value).length === 0 && !Object.hasOwn(ISTIO_DEFAULT_PROXY_CONFIG, key)) return;
    // Go writes map fields with sorted keys.
    defineOwn(out, key, MAP_FIELDS.has(key) && isObject(value) ? sortedKeys(value) : (value as Json));
  };
  for (const key of FIELD_ORDER) emit(key);
  return `${JSON.stringify(out)}\n`;
}

/** proxyMetadata as env entries, sorted by name as Go ranges over a map. */
export function proxyMetadataEnv(proxyConfig: ProxyConfig): JsonObject[] {
  const metadata = proxyConfig.proxyMetadata;
  if (!isObject(metadata)) return [];
  return Object.keys(metadata)
    .sort()
    .map((name) => ({ name, value: metadata[name] as string }));
}
