// The Envoy bootstrap of the `envoy` template, where istio-proxy runs Envoy itself without pilot-agent
// (bootstrap-iptables.md Part A). Section by section it is Istio's envoy_bootstrap.json, rendered from the same
// effective ProxyConfig the agent would use, and departs only where the agent did the work:
//  - `xds-grpc` dials the discovery address itself, over TLS verified against the mesh CA unless the ProxyConfig's
//    controlPlaneAuthPolicy is NONE; Istio's dials the agent's XDS socket and the agent dials istiod;
//  - the readiness listener asks Envoy's own /ready; Istio's asks the agent on 15020, which is absent here;
//  - what only the running pod knows reaches Envoy on its command line. The file is fixed at admission, when the pod
//    has no IP and, with generateName, no name yet, and Kubernetes expands $(VAR) only in command, args and env. So
//    `--service-node` carries the node id with $(INSTANCE_IP) and $(POD_NAME), and overrides `node.id`, which holds
//    the same unexpanded text: an Envoy started without the flag is refused by istiod instead of misnamed.
//
// Pure: pod, config and annotations in, JSON out. Checking the result against Envoy's schema is the job of
// src/bootstrap-validation, which loads the schema from disk.

import { isIP } from 'node:net';
import { revisionLabel, type InjectorConfig } from '../config/schema.js';
import { AnnotationError, InvalidBootstrapError } from '../errors.js';
import { parseBool, readSettings } from './annotations.js';
import { INIT_CONTAINER, LABEL, PORTS, PROXY_CONTAINER, PROXY_UID, VALIDATION_CONTAINER } from './constants.js';
import { isObject, type Json, type JsonObject } from './json.js';
import { own, type StringMap } from './labels.js';
import { meshProxyConfig, type ProxyConfig } from './proxy-config.js';
import { istiodAddress, proxyEnv } from './templates/sidecar.js';
import type { TemplateContext, WorkloadRef } from './templates/template.js';
import { workloadOf } from './workload.js';

/** Where the `envoy` template mounts the bootstrap; the name operators know from Istio up to 1.15. */
export const BOOTSTRAP_PATH = '/etc/istio/proxy/envoy-rev0.json';
/** The istiod-ca-cert volume (ConfigMap istio-ca-root-cert) as the sidecar template mounts it. */
const MESH_ROOT_CERT = '/var/run/secrets/istio/root-cert.pem';
const LOCALITY_LABEL = 'istio-locality';
/** Istio's default for overload.global_downstream_max_connections: math.MaxInt32, i.e. no limit. */
const MAX_DOWNSTREAM_CONNECTIONS = 2147483647;
const SDS_CLUSTER = 'sds-grpc';
const ENVOY_ADMIN_CLUSTER = 'envoy_admin';

const STATS_ANNOTATION = {
  inclusionPrefixes: 'sidecar.istio.io/statsInclusionPrefixes',
  inclusionSuffixes: 'sidecar.istio.io/statsInclusionSuffixes',
  inclusionRegexps: 'sidecar.istio.io/statsInclusionRegexps',
  extraStatTags: 'sidecar.istio.io/extraStatTags',
  histogramBuckets: 'sidecar.istio.io/statsHistogramBuckets',
} as const;

/** What the bootstrap needs beyond the ProxyConfig, which has no field for either. */
export interface BootstrapOptions {
  /**
   * The Unix socket of an SDS server that serves the workload certificate "default" (a SPIRE agent, as in Istio's
   * SPIRE integration); Envoy presents it to istiod. "" for none: the connection is then TLS without a client
   * certificate, which istiod accepts only with XDS_AUTH=false.
   */
  sdsSocketPath: string;
  /**
   * host:port of an OTLP/gRPC collector. When set, Envoy traces to it instead of the ProxyConfig's tracer, which
   * cannot name OpenTelemetry (Istio configures it through the Telemetry API, over xDS). "" for none.
   */
  openTelemetryCollector: string;
}

export const DEFAULT_BOOTSTRAP_OPTIONS: BootstrapOptions = Object.freeze({ sdsSocketPath: '', openTelemetryCollector: '' });

export interface PodBootstrapInput {
  /** The pod as received (raw JSON). */
  pod: unknown;
  /** The request's namespace; the pod's own metadata.namespace wins when set. */
  namespace: string;
  config: InjectorConfig;
  options?: BootstrapOptions;
  /** As InjectInput.workload: derived from owner references when absent. */
  workload?: WorkloadRef;
}

export interface EnvoyBootstrap {
  /** The file Envoy reads at BOOTSTRAP_PATH. */
  bootstrap: JsonObject;
  /** Envoy's command line as pilot-agent builds it, plus the flags that carry run-time values. */
  args: string[];
  /** The env the args expand with $(VAR); Kubernetes leaves a reference to an undefined variable as it is. */
  env: JsonObject[];
}

// ---- inputs --------------------------------------------------------------------------------------------------

interface HostPort {
  host: string;
  port: number;
}

/** What the sections are made of: the effective ProxyConfig and the stats annotations, read and checked once. */
interface BootstrapPlan {
  discovery: HostPort;
  tls: boolean;
  adminPort: number;
  tracer: { kind: 'zipkin' | 'datadog' | 'opentelemetry'; target: HostPort } | undefined;
  statsd: HostPort | undefined;
  extraStatTags: string[];
  inclusion: { prefixes: string[]; suffixes: string[]; regexps: string[] };
  /** Sorted by prefix, as Istio renders them. */
  histogramBuckets: [string, Json][];
  concurrency: number | undefined;
  drainSeconds: number;
  runtime: JsonObject;
  apiType: 'GRPC' | 'DELTA_GRPC';
}

/** Sorts entries by key, as Go writes maps. */
const byKey = ([a]: [string, unknown], [b]: [string, unknown]) => (a < b ? -1 : a > b ? 1 : 0);

const commaList = (value: string) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');

const HOST_PORT = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):([0-9]{1,10})$/;

/** host and port of "host:port"; the port is range-checked by the schema, whose message then names its path. */
function hostPort(address: string): HostPort | string {
  if (address.includes('$(')) {
    return "Kubernetes expands $(VAR) only in a container's command, args and env, not in the bootstrap file; use a DNS name or an IP";
  }
  const match = HOST_PORT.exec(address);
  if (!match) return 'expected host:port';
  return { host: (match[1] ?? match[2]) as string, port: Number(match[3]) };
}

const GO_DURATION_PART = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g;
const SECONDS_PER_UNIT: Record<string, number> = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** Whole seconds of a ProxyConfig duration ("45s", "1m30s"), truncated as pilot-agent does for --drain-time-s. */
function durationSeconds(text: string): number {
  let seconds = 0;
  for (const [, amount, unit] of text.matchAll(GO_DURATION_PART)) seconds += Number(amount) * (SECONDS_PER_UNIT[unit as string] ?? 0);
  return Math.trunc(seconds);
}

function stringList(value: unknown, where: string, problems: string[]): string[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value as string[];
  problems.push(`${where}: expected a list of strings, got ${JSON.stringify(value)}`);
  return [];
}

// Envoy dropped these tracers (lightstep and OpenCensus in 1.30; stackdriver was built on OpenCensus).
const REMOVED_TRACERS = ['lightstep', 'stackdriver', 'openCensusAgent'];

function readTracer(tracing: Json | undefined, options: BootstrapOptions, problems: string[]): BootstrapPlan['tracer'] {
  const where = (field: string) => `ProxyConfig tracing.${field}`;
  const target = (address: unknown, field: string): HostPort | undefined => {
    const parsed = typeof address === 'string' ? hostPort(address) : 'expected host:port';
    if (typeof parsed !== 'string') return parsed;
    problems.push(`${where(field)}: invalid value ${JSON.stringify(address)}: ${parsed}`);
    return undefined;
  };
  if (options.openTelemetryCollector) {
    const collector = target(options.openTelemetryCollector, 'openTelemetryCollector (bootstrap option)');
    return collector && { kind: 'opentelemetry', target: collector };
  }
  if (!isObject(tracing)) return undefined;
  for (const removed of REMOVED_TRACERS) {
    if (tracing[removed] !== undefined) problems.push(`${where(removed)}: Envoy no longer ships this tracer; use zipkin or datadog`);
  }
  for (const kind of ['zipkin', 'datadog'] as const) {
    const tracer = tracing[kind];
    if (!isObject(tracer)) continue;
    const address = target(tracer.address, `${kind}.address`);
    return address && { kind, target: address };
  }
  return undefined;
}

function readHistogramBuckets(text: string, problems: string[]): [string, Json][] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const valid =
    isObject(parsed) && Object.values(parsed).every((buckets) => Array.isArray(buckets) && buckets.every((b) => typeof b === 'number'));
  if (!valid) {
    const expected = 'expected JSON such as {"istio":[1,5,10]}';
    problems.push(`annotation ${STATS_ANNOTATION.histogramBuckets}: invalid value ${JSON.stringify(text)}: ${expected}`);
    return [];
  }
  return Object.entries(parsed as JsonObject)
    .sort(byKey)
    .map(([prefix, buckets]) => [prefix, buckets as Json]);
}

/** Problems by where they come from: the pod's annotations, or the ProxyConfig (the config's, or the pod's own). */
interface Problems {
  annotations: string[];
  proxyConfig: string[];
}

function checkRegexps(regexps: string[], where: string, problems: string[]): void {
  for (const regexp of regexps) {
    try {
      new RegExp(regexp);
    } catch {
      problems.push(`${where}: ${JSON.stringify(regexp)} is not a valid regular expression`);
    }
  }
}

/** The sidecar.istio.io/stats* annotations over the ProxyConfig, as Istio's getStatsOptions combines them. */
function readStats(annotations: StringMap | undefined, proxyConfig: ProxyConfig, plan: BootstrapPlan, problems: Problems): void {
  const matcher = isObject(proxyConfig.proxyStatsMatcher) ? proxyConfig.proxyStatsMatcher : {};
  // Each annotation replaces the ProxyConfig's list. Istio writes one entry per pod IP for {pod_ip}; the bootstrap
  // is rendered before the pod has one.
  const inclusion = (annotation: string, field: string): string[] => {
    const value = own(annotations, annotation);
    if (value === undefined) return stringList(matcher[field], `ProxyConfig proxyStatsMatcher.${field}`, problems.proxyConfig);
    const items = commaList(value);
    if (items.some((item) => item.includes('{pod_ip}'))) {
      const why = '{pod_ip} cannot be expanded, the bootstrap is rendered before the pod has an IP';
      problems.annotations.push(`annotation ${annotation}: invalid value ${JSON.stringify(value)}: ${why}`);
    }
    return items;
  };
  plan.inclusion = {
    prefixes: inclusion(STATS_ANNOTATION.inclusionPrefixes, 'inclusionPrefixes'),
    suffixes: inclusion(STATS_ANNOTATION.inclusionSuffixes, 'inclusionSuffixes'),
    regexps: inclusion(STATS_ANNOTATION.inclusionRegexps, 'inclusionRegexps'),
  };
  const annotatedRegexps = own(annotations, STATS_ANNOTATION.inclusionRegexps) !== undefined;
  checkRegexps(
    plan.inclusion.regexps,
    annotatedRegexps ? `annotation ${STATS_ANNOTATION.inclusionRegexps}` : 'ProxyConfig proxyStatsMatcher.inclusionRegexps',
    annotatedRegexps ? problems.annotations : problems.proxyConfig,
  );
  const tags = own(annotations, STATS_ANNOTATION.extraStatTags);
  plan.extraStatTags = [
    ...stringList(proxyConfig.extraStatTags, 'ProxyConfig extraStatTags', problems.proxyConfig),
    ...(tags === undefined ? [] : commaList(tags)),
  ];
  const buckets = own(annotations, STATS_ANNOTATION.histogramBuckets);
  if (buckets !== undefined) plan.histogramBuckets = readHistogramBuckets(buckets, problems.annotations);
}

/** Istio's default runtime flags (pilot-agent extractRuntimeFlags); istiod's config is generated for them. */
const DEFAULT_RUNTIME: Readonly<JsonObject> = Object.freeze({
  'envoy.deprecated_features:envoy.config.listener.v3.Listener.hidden_envoy_deprecated_use_original_dst': true,
  'envoy.reloadable_features.coalesce_lb_rebuilds_on_batch_update': false,
  'envoy.reloadable_features.fixed_heap_use_allocated': true,
  'envoy.reloadable_features.http_reject_path_with_fragment': false,
  're2.max_program_size.error_level': '32768',
});

/** ProxyConfig.runtimeValues over the defaults: "true"/"false" become booleans and "" removes a flag, as in Istio. */
function runtimeFlags(values: Json | undefined): JsonObject {
  const flags: JsonObject = { ...DEFAULT_RUNTIME };
  if (!isObject(values)) return flags;
  for (const [key, value] of Object.entries(values)) {
    if (value === '') delete flags[key];
    else flags[key] = value === 'true' ? true : value === 'false' ? false : (value as Json);
  }
  return Object.fromEntries(Object.entries(flags).sort(byKey));
}

function plan(ctx: TemplateContext, options: BootstrapOptions): BootstrapPlan {
  const { proxyConfig } = ctx.settings;
  const problems: Problems = { annotations: [], proxyConfig: [] };
  const discovery = typeof proxyConfig.discoveryAddress === 'string' ? hostPort(proxyConfig.discoveryAddress) : 'expected host:port';
  if (typeof discovery === 'string') {
    problems.proxyConfig.push(`ProxyConfig discoveryAddress: invalid value ${JSON.stringify(proxyConfig.discoveryAddress)}: ${discovery}`);
  }
  let statsd: HostPort | undefined;
  if (typeof proxyConfig.statsdUdpAddress === 'string' && proxyConfig.statsdUdpAddress !== '') {
    const parsed = hostPort(proxyConfig.statsdUdpAddress);
    // The agent resolves a name before writing the bootstrap; Envoy's statsd sink takes only an IP.
    if (typeof parsed === 'string' || isIP(parsed.host) === 0) {
      const value = JSON.stringify(proxyConfig.statsdUdpAddress);
      problems.proxyConfig.push(`ProxyConfig statsdUdpAddress: invalid value ${value}: expected IP:port`);
    } else statsd = parsed;
  }
  const metadata = isObject(proxyConfig.proxyMetadata) ? proxyConfig.proxyMetadata : {};
  const delta = typeof metadata.ISTIO_DELTA_XDS === 'string' ? parseBool(metadata.ISTIO_DELTA_XDS) : undefined;
  const result: BootstrapPlan = {
    discovery: typeof discovery === 'string' ? { host: '', port: 0 } : discovery,
    tls: proxyConfig.controlPlaneAuthPolicy !== 'NONE',
    adminPort: typeof proxyConfig.proxyAdminPort === 'number' ? proxyConfig.proxyAdminPort : PORTS.envoyAdmin,
    tracer: readTracer(proxyConfig.tracing, options, problems.proxyConfig),
    statsd,
    extraStatTags: [],
    inclusion: { prefixes: [], suffixes: [], regexps: [] },
    histogramBuckets: [],
    concurrency: typeof proxyConfig.concurrency === 'number' ? proxyConfig.concurrency : undefined,
    drainSeconds: typeof proxyConfig.drainDuration === 'string' ? durationSeconds(proxyConfig.drainDuration) : 45,
    runtime: runtimeFlags(proxyConfig.runtimeValues),
    // ISTIO_DELTA_XDS is the agent's switch, set through proxyMetadata; delta is Istio's default since 1.22.
    apiType: delta === false ? 'GRPC' : 'DELTA_GRPC',
  };
  readStats(ctx.annotations, proxyConfig, result, problems);
  if (problems.annotations.length > 0) throw new AnnotationError(problems.annotations);
  // The ProxyConfig may come from the config file as well as the pod, so these name the field, not a source.
  if (problems.proxyConfig.length > 0) throw new InvalidBootstrapError(problems.proxyConfig);
  return result;
}

// ---- sections ------------------------------------------------------------------------------------------------

const http2ProtocolOptions = (): JsonObject => ({
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    explicit_http_config: { http2_protocol_options: {} },
  },
});

const singleEndpoint = (clusterName: string, address: JsonObject): JsonObject => ({
  cluster_name: clusterName,
  endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }],
});

/** A STATIC cluster on this pod, shaped as Istio's prometheus_stats and agent clusters. */
const localCluster = (name: string, port: number): JsonObject => ({
  name,
  alt_stat_name: `${name};`,
  type: 'STATIC',
  connect_timeout: '0.250s',
  lb_policy: 'ROUND_ROBIN',
  load_assignment: singleEndpoint(name, { socket_address: { protocol: 'TCP', address: '127.0.0.1', port_value: port } }),
});

/**
 * A cluster that resolves a DNS name. The pod's IP family is unknown at admission, so IPv4 is preferred with IPv6
 * as fallback (Istio picks V4_ONLY or V6_ONLY from the pod's IPs).
 */
const dnsCluster = (name: string, { host, port }: HostPort): JsonObject => ({
  name,
  alt_stat_name: `${name};`,
  type: 'STRICT_DNS',
  respect_dns_ttl: true,
  dns_lookup_family: 'V4_PREFERRED',
  connect_timeout: '1s',
  lb_policy: 'ROUND_ROBIN',
  load_assignment: singleEndpoint(name, { socket_address: { address: host, port_value: port } }),
});

function xdsCluster(p: BootstrapPlan, options: BootstrapOptions): JsonObject {
  const limits = { max_connections: 100000, max_pending_requests: 100000, max_requests: 100000 };
  const cluster: JsonObject = {
    ...dnsCluster('xds-grpc', p.discovery),
    circuit_breakers: { thresholds: [{ priority: 'DEFAULT', ...limits }, { priority: 'HIGH', ...limits }] },
    upstream_connection_options: { tcp_keepalive: { keepalive_time: 300 } },
    max_requests_per_connection: 1,
    typed_extension_protocol_options: http2ProtocolOptions(),
  };
  if (!p.tls) return cluster;
  const commonTlsContext: JsonObject = {
    alpn_protocols: ['h2'],
    // istiod's serving certificate names istiod[-<revision>].<namespace>.svc; the agent checks the same (PILOT_SAN).
    validation_context: {
      trusted_ca: { filename: MESH_ROOT_CERT },
      match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: p.discovery.host } }],
    },
  };
  if (options.sdsSocketPath) {
    commonTlsContext.tls_certificate_sds_secret_configs = [
      {
        name: 'default',
        sds_config: {
          api_config_source: {
            api_type: 'GRPC',
            transport_api_version: 'V3',
            grpc_services: [{ envoy_grpc: { cluster_name: SDS_CLUSTER } }],
          },
          resource_api_version: 'V3',
        },
      },
    ];
  }
  cluster.transport_socket = {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      sni: p.discovery.host,
      common_tls_context: commonTlsContext,
    },
  };
  return cluster;
}

const sdsCluster = (socketPath: string): JsonObject => ({
  name: SDS_CLUSTER,
  alt_stat_name: `${SDS_CLUSTER};`,
  type: 'STATIC',
  typed_extension_protocol_options: http2ProtocolOptions(),
  connect_timeout: '1s',
  lb_policy: 'ROUND_ROBIN',
  load_assignment: singleEndpoint(SDS_CLUSTER, { pipe: { path: socketPath } }),
});

const router = (): JsonObject => ({
  name: 'envoy.filters.http.router',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
});

const statsCompressor = (algorithm: string, messageType: string): JsonObject => ({
  name: `envoy.filters.http.compressor.${algorithm}`,
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor',
    compressor_library: {
      name: `stats_${algorithm}`,
      typed_config: { '@type': `type.googleapis.com/envoy.extensions.compression.${algorithm}.compressor.v3.${messageType}` },
    },
    response_direction_config: {
      common_config: {
        content_type: ['text/plain', 'application/vnd.google.protobuf', 'application/openmetrics-text', 'application/openmetrics-protobuf'],
      },
    },
  },
});

function httpListener(port: number, statPrefix: string, route: JsonObject, httpFilters: JsonObject[]): JsonObject {
  return {
    name: `0.0.0.0_${port}`,
    address: { socket_address: { protocol: 'TCP', address: '0.0.0.0', port_value: port } },
    // Scrapes and probes must get through while the proxy sheds load.
    ignore_global_conn_limit: true,
    bypass_overload_manager: true,
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              codec_type: 'AUTO',
              stat_prefix: statPrefix,
              route_config: { virtual_hosts: [{ name: 'backend', domains: ['*'], routes: [route] }] },
              http_filters: httpFilters,
            },
          },
        ],
      },
    ],
  };
}

const prometheusListener = (): JsonObject =>
  httpListener(
    PORTS.envoyPrometheus,
    'stats',
    { match: { prefix: '/stats/prometheus' }, route: { cluster: 'prometheus_stats' } },
    [statsCompressor('brotli', 'Brotli'), statsCompressor('zstd', 'Zstd'), statsCompressor('gzip', 'Gzip'), router()],
  );

// Envoy's /ready answers 200 only once the server is LIVE, i.e. after the first LDS and CDS responses (their
// initial_fetch_timeout is 0s, so Envoy waits for them): what the agent's /healthz/ready reports in Istio.
const readinessListener = (): JsonObject =>
  httpListener(
    PORTS.readiness,
    'agent',
    { match: { prefix: '/healthz/ready' }, route: { cluster: ENVOY_ADMIN_CLUSTER, prefix_rewrite: '/ready' } },
    [router()],
  );

// Istio's stats_tags, verbatim; the extra tags go between the two groups.
const STATS_TAGS_BEFORE: [string, string][] = [
  ['cluster_name', String.raw`^cluster(\.(.+);)`],
  ['http_conn_manager_prefix', String.raw`^http\.(((?:[_.[:digit:]\w]*|[_\[\]aAbBcCdDeEfF[:digit:]\w\:]*));\.)`],
  ['thread_name', String.raw`^server(\.(.+))\.watchdog`],
  ['tcp_prefix', String.raw`^tcp\.((.*?)\.)\w+?$`],
  ['response_code', String.raw`_rq(_(\d{3}))$`],
  ['response_code_class', String.raw`_rq(_(\dxx))$`],
  ['http_conn_manager_listener_prefix', String.raw`^listener(?=\.).*?\.http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)`],
  ['listener_address', String.raw`^listener\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)`],
  ['mongo_prefix', String.raw`^mongo\.(.+?)\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$`],
];
const STATS_TAGS_AFTER: [string, string][] = [
  ['cache', String.raw`(cache\.(.+?)\.)`],
  ['component', String.raw`(component\.(.+?)\.)`],
  ['tag', String.raw`(tag\.(.+?);\.)`],
  ['wasm_filter', String.raw`(wasm_filter\.(.+?)\.)`],
  ['authz_enforce_result', String.raw`rbac(\.(allowed|denied))`],
  ['authz_dry_run_action', String.raw`(\.istio_dry_run_(allow|deny)_)`],
  ['authz_dry_run_result', String.raw`(\.shadow_(allowed|denied))`],
];
/** Stats istiod and Istio's dashboards need, kept whatever the pod asks for. */
const REQUIRED_STATS_PREFIXES = ['cluster_manager', 'listener_manager', 'server', 'cluster.xds-grpc', 'wasm'];
const REQUIRED_STATS_SUFFIXES = ['rbac.allowed', 'rbac.denied', 'shadow_allowed', 'shadow_denied'];

function statsConfig(p: BootstrapPlan): JsonObject {
  const tag = ([tag_name, regex]: [string, string]): JsonObject => ({ tag_name, regex });
  const config: JsonObject = {
    use_all_default_tags: false,
    stats_tags: [
      ...STATS_TAGS_BEFORE.map(tag),
      ...p.extraStatTags.map((name) => tag([name, `(${name}=\\.=(.*?);\\.;)`])),
      ...STATS_TAGS_AFTER.map(tag),
    ],
  };
  if (p.histogramBuckets.length > 0) {
    config.histogram_bucket_settings = p.histogramBuckets.map(([prefix, buckets]) => ({ match: { prefix }, buckets }));
  }
  const { prefixes, suffixes, regexps } = p.inclusion;
  config.stats_matcher = {
    inclusion_list: {
      patterns: [
        { prefix: 'reporter=' },
        ...[...prefixes, ...REQUIRED_STATS_PREFIXES].map((prefix) => ({ prefix })),
        ...[...suffixes, ...REQUIRED_STATS_SUFFIXES].map((suffix) => ({ suffix })),
        ...[...regexps, String.raw`vhost\..*\.route\..*`].map((regex) => ({ safe_regex: { regex } })),
        { prefix: 'component' },
        { prefix: 'istio' },
      ],
    },
  };
  return config;
}

/** The `tracing.http` provider and the cluster it reports to. */
function tracer({ kind, target }: NonNullable<BootstrapPlan['tracer']>, serviceName: string): { http: JsonObject; cluster: JsonObject } {
  switch (kind) {
    case 'zipkin':
      return {
        http: {
          name: 'envoy.tracers.zipkin',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig',
            collector_cluster: 'zipkin',
            collector_endpoint: '/api/v2/spans',
            collector_endpoint_version: 'HTTP_JSON',
            trace_id_128bit: true,
            shared_span_context: false,
          },
        },
        cluster: { ...dnsCluster('zipkin', target), dns_refresh_rate: '30s' },
      };
    case 'datadog':
      return {
        http: {
          name: 'envoy.tracers.datadog',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.config.trace.v3.DatadogConfig',
            collector_cluster: 'datadog_agent',
            service_name: serviceName,
          },
        },
        cluster: dnsCluster('datadog_agent', target),
      };
    case 'opentelemetry':
      return {
        http: {
          name: 'envoy.tracers.opentelemetry',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
            grpc_service: { envoy_grpc: { cluster_name: 'opentelemetry' } },
            service_name: serviceName,
          },
        },
        cluster: { ...dnsCluster('opentelemetry', target), typed_extension_protocol_options: http2ProtocolOptions() },
      };
  }
}

/** node.locality from the istio-locality label "region.zone.subzone", split as Istio's ConvertLocality does. */
function locality(labels: StringMap | undefined): JsonObject {
  const value = own(labels, LOCALITY_LABEL);
  const out: JsonObject = {};
  if (!value) return out;
  const [region, zone, ...subZone] = value.replaceAll('.', '/').split('/');
  if (region) out.region = region;
  if (zone) out.zone = zone;
  if (subZone.join('/')) out.sub_zone = subZone.join('/');
  return out;
}

/** Istio's getServiceCluster: serviceCluster unless it is the default "istio-proxy", else <app or workload>.<ns>. */
function serviceCluster(
  proxyConfig: ProxyConfig,
  labels: StringMap | undefined,
  workloadName: string | undefined,
  namespace: string,
): string {
  const configured = proxyConfig.serviceCluster;
  if (typeof configured === 'string' && configured !== '' && configured !== 'istio-proxy') return configured;
  return `${own(labels, 'app') ?? (workloadName || 'istio-proxy')}.${namespace}`;
}

/**
 * node.metadata as the agent assembles it: every ISTIO_META_* env value of the proxy (the sidecar template's own
 * list, so both templates announce the same), then the fields the agent reads from the pod and the ProxyConfig.
 */
function nodeMetadata(ctx: TemplateContext, p: BootstrapPlan): JsonObject {
  const out: JsonObject = {};
  for (const entry of proxyEnv(ctx)) {
    // Entries filled from the pod at run time (NODE_NAME) cannot be known here.
    if (typeof entry.name === 'string' && entry.name.startsWith('ISTIO_META_') && typeof entry.value === 'string') {
      out[entry.name.slice('ISTIO_META_'.length)] = entry.value;
    }
  }
  const { spec, labels, namespace, config, settings } = ctx;
  out.NAMESPACE = namespace;
  out.SERVICE_ACCOUNT = typeof spec.serviceAccountName === 'string' && spec.serviceAccountName ? spec.serviceAccountName : 'default';
  out.ISTIO_VERSION = config.images.tag;
  // A copy: the effective ProxyConfig shares nested objects with the defaults of every pod.
  out.PROXY_CONFIG = structuredClone(settings.proxyConfig);
  out.ENVOY_STATUS_PORT = PORTS.readiness;
  out.ENVOY_PROMETHEUS_PORT = PORTS.envoyPrometheus;
  const podLabels = Object.entries(labels ?? {}).filter(([key, value]) => key !== LABEL.podTemplateHash && typeof value === 'string');
  if (podLabels.length > 0) out.LABELS = Object.fromEntries(podLabels) as JsonObject;
  if (p.tls) out.PILOT_SAN = [p.discovery.host];
  return Object.fromEntries(Object.entries(out).sort(byKey)) as JsonObject;
}

// ---- the bootstrap -------------------------------------------------------------------------------------------

/** The bootstrap of the pod the template context describes, and the Envoy command line that goes with it. */
export function renderBootstrap(ctx: TemplateContext, options: BootstrapOptions = DEFAULT_BOOTSTRAP_OPTIONS): EnvoyBootstrap {
  const p = plan(ctx, options);
  const { namespace, labels, config, settings } = ctx;
  const metadata = nodeMetadata(ctx, p);
  const serviceNode = `sidecar~$(INSTANCE_IP)~$(POD_NAME).${namespace}~${namespace}.svc.${config.proxy.clusterDomain}`;
  const cluster = serviceCluster(settings.proxyConfig, labels, metadata.WORKLOAD_NAME as string | undefined, namespace);
  const tracing = p.tracer && tracer(p.tracer, cluster);

  const clusters: JsonObject[] = [localCluster('prometheus_stats', p.adminPort), localCluster(ENVOY_ADMIN_CLUSTER, p.adminPort)];
  if (options.sdsSocketPath) clusters.push(sdsCluster(options.sdsSocketPath));
  clusters.push(xdsCluster(p, options));
  if (tracing) clusters.push(tracing.cluster);

  const adsSource = (): JsonObject => ({ ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' });
  const bootstrap: JsonObject = {
    application_log_config: { log_format: { text_format: '%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t' } },
    node: { id: serviceNode, cluster, locality: locality(labels), metadata },
    layered_runtime: { layers: [{ name: 'global config', static_layer: p.runtime }, { name: 'admin', admin_layer: {} }] },
    // istiod may push internal listeners; Envoy refuses them without this extension.
    bootstrap_extensions: [
      {
        name: 'envoy.bootstrap.internal_listener',
        typed_config: {
          '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct',
          type_url: 'type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener',
          value: { buffer_size_kb: 64 },
        },
      },
    ],
    stats_config: statsConfig(p),
    admin: {
      access_log: [
        {
          name: 'envoy.access_loggers.file',
          typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: '/dev/null' },
        },
      ],
      profile_path: '/var/lib/istio/data/envoy.prof',
      address: { socket_address: { address: '127.0.0.1', port_value: p.adminPort } },
    },
    dynamic_resources: {
      lds_config: adsSource(),
      cds_config: adsSource(),
      ads_config: {
        api_type: p.apiType,
        set_node_on_first_message_only: true,
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }],
      },
    },
    static_resources: { clusters, listeners: [prometheusListener(), readinessListener()] },
    overload_manager: {
      resource_monitors: [
        {
          name: 'envoy.resource_monitors.global_downstream_max_connections',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig',
            max_active_downstream_connections: MAX_DOWNSTREAM_CONNECTIONS,
          },
        },
      ],
    },
  };
  if (tracing) bootstrap.tracing = { http: tracing.http };
  if (p.statsd) {
    bootstrap.stats_sinks = [
      {
        name: 'envoy.stat_sinks.statsd',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.config.metrics.v3.StatsdSink',
          address: { socket_address: { address: p.statsd.host, port_value: p.statsd.port } },
        },
      },
    ];
  }
  bootstrap.deferred_stat_options = { enable_deferred_creation_stats: true };

  // pilot-agent's Envoy command line (pkg/envoy/proxy.go), minus --allow-unknown-static-fields: ours is checked.
  const args = [
    '-c', BOOTSTRAP_PATH,
    '--service-node', serviceNode,
    '--drain-time-s', String(p.drainSeconds),
    '--drain-strategy', 'immediate',
    '--local-address-ip-version', 'v4',
    '--file-flush-interval-msec', '1000',
    '--disable-hot-restart',
    '--log-level', settings.proxyLogLevel,
    '--component-log-level', settings.proxyComponentLogLevel,
  ];
  // 0 means every core, which is Envoy's own default without the flag; pilot-agent passes it only above 0.
  if (p.concurrency) args.push('--concurrency', String(p.concurrency));
  const env: JsonObject[] = [
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'INSTANCE_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
  ];
  return { bootstrap, args, env };
}

const INJECTED_CONTAINERS: ReadonlySet<unknown> = new Set([PROXY_CONTAINER, INIT_CONTAINER, VALIDATION_CONTAINER]);

/** The bootstrap of a pod as it is, for `sidecar-injector bootstrap` and the webhook's debug endpoint. */
export function renderPodBootstrap(input: PodBootstrapInput): EnvoyBootstrap {
  const { config } = input;
  const pod = isObject(input.pod) ? input.pod : {};
  const metadata = isObject(pod.metadata) ? pod.metadata : undefined;
  const spec = isObject(pod.spec) ? pod.spec : {};
  const labels = isObject(metadata?.labels) ? (metadata.labels as StringMap) : undefined;
  const annotations = isObject(metadata?.annotations) ? (metadata.annotations as StringMap) : undefined;
  const settings = readSettings(annotations, config, meshProxyConfig(config, istiodAddress(config)));
  const containers = Array.isArray(spec.containers) ? spec.containers.filter(isObject) : [];
  const ctx: TemplateContext = {
    config,
    settings,
    revision: revisionLabel(config),
    native: settings.nativeSidecar ?? config.nativeSidecars,
    namespace: typeof metadata?.namespace === 'string' && metadata.namespace ? metadata.namespace : input.namespace,
    workload: input.workload ?? workloadOf(metadata),
    labels,
    annotations,
    spec,
    appContainers: containers.filter((c) => !INJECTED_CONTAINERS.has(c.name)),
    proxyUid: PROXY_UID,
    proxyGid: PROXY_UID,
  };
  return renderBootstrap(ctx, input.options);
}
