// Istio's own golden bootstraps (pkg/bootstrap/testdata, read from ../shared/reference at run time) against our
// checker and our renderer. Every golden must pass the strict check: Istio loads them into Envoy, so a checker that
// refused one would be too strict. Then, for each golden, our rendering of the same ProxyConfig must match it
// section by section, except for the differences listed below, each a deliberate design choice or a setting we do
// not render.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type BootstrapValidator, loadBootstrapValidator } from '../src/bootstrap-validation/load.js';
import { renderPodBootstrap } from '../src/core/bootstrap.js';
import type { JsonObject } from '../src/core/json.js';
import { configFor } from './helpers/pods.js';
import { REFERENCE_DIR } from './helpers/reference.js';

const GOLDENS = `${join(REFERENCE_DIR, 'bootstrap-goldens')}/`;
const golden = (name: string): any => JSON.parse(readFileSync(`${GOLDENS}${name}_golden.json`, 'utf8'));

let validator: BootstrapValidator;
beforeAll(() => {
  validator = loadBootstrapValidator();
});

// Differences deliberately ignored. Istio's goldens come from pilot-agent, which sits between Envoy and istiod;
// our bootstrap is for Envoy running alone (the `envoy` template).
//  - xds-grpc's address and transport: Istio dials the agent's Unix socket ./etc/istio/proxy/XDS; ours dials the
//    discovery address, with TLS unless controlPlaneAuthPolicy is NONE.
//  - clusters agent and sds-grpc: they reach pilot-agent, absent here; ours has envoy_admin for readiness, and
//    sds-grpc only when an SDS socket is configured.
//  - the 15021 route: Istio sends /healthz/ready to the agent; ours rewrites it to Envoy's own /ready.
//  - dns_lookup_family of DNS clusters: Istio picks V4_ONLY from the pod's IPs, unknown at admission; ours prefers
//    IPv4 and falls back to IPv6.
//  - node.id, INSTANCE_IPS, NAME, POD_NAME, NODE_NAME: known only when the pod runs; the id comes with --service-node.
//  - cluster_manager and node.metadata OUTLIER_LOG_PATH: Istio's test passes --outlierLogPath; an injected pod does not.
//  - node.metadata WORKLOAD_IDENTITY_SOCKET_FILE, METADATA_DISCOVERY, ISTIO_PROXY_SHA, STATIC_LABELS, ANNOTATIONS and
//    the flattened labels: set by the agent or by Istio's test harness. ANNOTATIONS would copy every annotation of a
//    pod whose annotations are where the `envoy` template keeps its bootstrap.
//  - datadog's service_name: Istio's test has no namespace, so its node cluster is "istio-proxy"; ours follows the
//    same rule with one: <app>.<namespace>.
//  - stats sink envoy.stat_sinks.metrics_service and clusters envoy_metrics_service, envoy_accesslog_service:
//    ProxyConfig envoyMetricsService and envoyAccessLogService are not rendered.
//  - stats inclusion prefixes with {pod_ip}: only the running pod knows its IP; we refuse the pattern.

interface Case {
  /** The .proxycfg of the golden, as the ProxyConfig of our config. */
  proxyConfig: JsonObject;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  namespace?: string;
}

// Every golden's .proxycfg also sets configPath, binaryPath and serviceCluster "istio-proxy", which are Istio's
// defaults or agent-only. A .proxycfg without a tracer renders none: our config says so with `tracing: {}`, since
// our ProxyConfig starts from Istio's defaults, which name zipkin.
const CASES: Record<string, Case> = {
  default: { proxyConfig: { drainDuration: '2s', discoveryAddress: 'istio-pilot:15010', controlPlaneAuthPolicy: 'NONE', tracing: {} } },
  xdsproxy: { proxyConfig: { drainDuration: '2s', discoveryAddress: 'istio-pilot:15010', controlPlaneAuthPolicy: 'NONE', tracing: {} } },
  auth: { proxyConfig: { drainDuration: '2s', discoveryAddress: 'istio-pilot:15011', controlPlaneAuthPolicy: 'MUTUAL_TLS', tracing: {} } },
  tracing_none: { proxyConfig: { drainDuration: '2s', discoveryAddress: 'istio-pilot:15010', controlPlaneAuthPolicy: 'NONE', tracing: {} } },
  tracing_zipkin: {
    proxyConfig: { drainDuration: '2s', discoveryAddress: 'istio-pilot:15010', controlPlaneAuthPolicy: 'NONE', tracing: { zipkin: { address: 'localhost:6000' } } },
  },
  tracing_datadog: {
    proxyConfig: { drainDuration: '2s', discoveryAddress: 'istio-pilot:15010', controlPlaneAuthPolicy: 'NONE', tracing: { datadog: { address: 'localhost:8126' } } },
  },
  stats_inclusion: {
    proxyConfig: { drainDuration: '2s', discoveryAddress: 'istio-pilot:15010', controlPlaneAuthPolicy: 'NONE', tracing: {}, extraStatTags: ['dlp_success'] },
    // The golden's annotations, less the http.{pod_ip}_ prefix.
    annotations: {
      'sidecar.istio.io/extraStatTags': 'dlp_status,dlp_error',
      'sidecar.istio.io/statsHistogramBuckets': '{"istio":[1,5,10,50,100,500,1000,5000,10000],"envoy":[1,5,10,25,50,100,250,500,1000,2500,5000,10000]}',
      'sidecar.istio.io/statsInclusionPrefixes': 'prefix1,prefix2',
      'sidecar.istio.io/statsInclusionRegexps': 'http.[0-9]*\\.[0-9]*\\.[0-9]*\\.[0-9]*_8080.downstream_rq_time',
      'sidecar.istio.io/statsInclusionSuffixes':
        'suffix1,suffix2,upstream_rq_1xx,upstream_rq_2xx,upstream_rq_3xx,upstream_rq_4xx,upstream_rq_5xx,upstream_rq_time,upstream_cx_tx_bytes_total,upstream_cx_rx_bytes_total,upstream_cx_total,downstream_rq_1xx,downstream_rq_2xx,downstream_rq_3xx,downstream_rq_4xx,downstream_rq_5xx,downstream_rq_time,downstream_cx_tx_bytes_total,downstream_cx_rx_bytes_total,downstream_cx_total',
    },
  },
  running: {
    proxyConfig: {
      drainDuration: '5s',
      discoveryAddress: 'mypilot:1001',
      controlPlaneAuthPolicy: 'MUTUAL_TLS',
      statsdUdpAddress: '10.1.1.1:9125',
      proxyAdminPort: 15005,
      statNameLength: 200,
      tracing: { zipkin: { address: 'localhost:6000' } },
    },
    labels: { app: 'test', version: 'v1alpha1', 'istio-locality': 'regionA.zoneB.sub_zoneC' },
    namespace: 'test',
  },
  all: {
    proxyConfig: {
      drainDuration: '5s',
      discoveryAddress: 'mypilot:15011',
      controlPlaneAuthPolicy: 'MUTUAL_TLS',
      statsdUdpAddress: '10.1.1.1:9125',
      envoyMetricsService: { address: 'metrics-service:15000' },
      envoyAccessLogService: { address: 'accesslog-service:15000' },
      proxyAdminPort: 15005,
      statNameLength: 200,
      tracing: { zipkin: { address: 'localhost:6000' } },
    },
  },
};

function ours(name: string): any {
  const c = CASES[name] as Case;
  const namespace = c.namespace ?? 'istio-system';
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'foo', namespace, labels: c.labels ?? {}, annotations: c.annotations ?? {} },
    spec: { containers: [{ name: 'app', image: 'example/app:1' }] },
  };
  const { bootstrap } = renderPodBootstrap({ pod, namespace, config: configFor('', { proxyConfig: c.proxyConfig }) });
  expect(validator.validate(bootstrap)).toEqual([]);
  return bootstrap;
}

const byName = (list: any[], name: string) => list.find((item) => item.name === name);
const without = (object: any, ...keys: string[]) => Object.fromEntries(Object.entries(object).filter(([key]) => !keys.includes(key)));

const goldenNames = () =>
  readdirSync(GOLDENS)
    .filter((file) => file.endsWith('_golden.json'))
    .map((file) => file.slice(0, -'_golden.json'.length));

describe("Istio's golden bootstraps", () => {
  it('are all nine of pkg/bootstrap/testdata', () => {
    expect(goldenNames().sort()).toEqual(Object.keys(CASES).sort());
  });

  it.each(goldenNames())('%s passes our strict check of Envoy\'s schema', (name) => {
    expect(validator.validate(golden(name))).toEqual([]);
  });
});

describe.each(Object.keys(CASES))('our bootstrap for the ProxyConfig of golden %s', (name) => {
  it('has the same log format, runtime, extensions, admin, xDS sources, overload manager and deferred stats', () => {
    const [theirs, mine] = [golden(name), ours(name)];
    for (const section of ['application_log_config', 'layered_runtime', 'bootstrap_extensions', 'admin', 'dynamic_resources', 'overload_manager', 'deferred_stat_options']) {
      expect({ [section]: mine[section] }).toEqual({ [section]: theirs[section] });
    }
  });

  it('has the same stats tags, histogram buckets and inclusion patterns', () => {
    const theirs = golden(name).stats_config;
    const podIpPrefix = (pattern: any) => typeof pattern.prefix === 'string' && /^http\.10\.[0-9.]+_$/.test(pattern.prefix);
    theirs.stats_matcher.inclusion_list.patterns = theirs.stats_matcher.inclusion_list.patterns.filter((p: any) => !podIpPrefix(p));
    expect(ours(name).stats_config).toEqual(theirs);
  });

  it('has the same Prometheus listener, and the same readiness listener but for its route', () => {
    const [theirs, mine] = [golden(name).static_resources.listeners, ours(name).static_resources.listeners];
    expect(mine[0]).toEqual(theirs[0]);
    const routeOf = (listener: any) => listener.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0];
    expect(routeOf(mine[1]).match).toEqual(routeOf(theirs[1]).match);
    for (const listener of [mine[1], theirs[1]]) delete listener.filter_chains[0].filters[0].typed_config.route_config;
    expect(mine[1]).toEqual(theirs[1]);
  });

  it('has the same prometheus_stats cluster, and xds-grpc with the same limits, keepalive and HTTP/2', () => {
    const [theirs, mine] = [golden(name).static_resources.clusters, ours(name).static_resources.clusters];
    expect(byName(mine, 'prometheus_stats')).toEqual(byName(theirs, 'prometheus_stats'));
    const shared = ['circuit_breakers', 'upstream_connection_options', 'max_requests_per_connection', 'typed_extension_protocol_options', 'connect_timeout', 'lb_policy'];
    const pick = (cluster: any) => Object.fromEntries(shared.map((key) => [key, cluster[key]]));
    expect(pick(byName(mine, 'xds-grpc'))).toEqual(pick(byName(theirs, 'xds-grpc')));
  });

  it('has the same tracer and tracer cluster', () => {
    const [theirs, mine] = [golden(name), ours(name)];
    if (theirs.tracing?.http.typed_config.service_name !== undefined) {
      expect(mine.tracing.http.typed_config.service_name).toBe(mine.node.cluster);
      mine.tracing.http.typed_config.service_name = theirs.tracing.http.typed_config.service_name;
    }
    expect(mine.tracing).toEqual(theirs.tracing);
    for (const tracer of ['zipkin', 'datadog_agent']) {
      const [their, my] = [byName(theirs.static_resources.clusters, tracer), byName(mine.static_resources.clusters, tracer)];
      expect(my === undefined ? undefined : without(my, 'dns_lookup_family')).toEqual(their === undefined ? undefined : without(their, 'dns_lookup_family'));
    }
  });

  it('has the same statsd sink', () => {
    const statsd = (bootstrap: any) => (bootstrap.stats_sinks ?? []).filter((sink: any) => sink.name === 'envoy.stat_sinks.statsd');
    expect(statsd(ours(name))).toEqual(statsd(golden(name)));
  });

  it('has the same node cluster and locality where Istio\'s test gives the pod a namespace, and the same discovery address', () => {
    const [theirs, mine] = [golden(name).node, ours(name).node];
    if (CASES[name]?.namespace) expect(mine.cluster).toBe(theirs.cluster);
    expect(mine.locality).toEqual(theirs.locality);
    expect(mine.metadata.PROXY_CONFIG.discoveryAddress).toBe(theirs.metadata.PROXY_CONFIG.discoveryAddress);
    if (theirs.metadata.INTERCEPTION_MODE) expect(mine.metadata.INTERCEPTION_MODE).toBe(theirs.metadata.INTERCEPTION_MODE);
    if (theirs.metadata.NAMESPACE) expect(mine.metadata.NAMESPACE).toBe(theirs.metadata.NAMESPACE);
  });

  it('has the same top-level sections but cluster_manager', () => {
    const [theirs, mine] = [Object.keys(golden(name)), Object.keys(ours(name))];
    expect(theirs.filter((key) => !mine.includes(key))).toEqual(['cluster_manager']);
    expect(mine.filter((key) => !theirs.includes(key))).toEqual([]);
  });
});
