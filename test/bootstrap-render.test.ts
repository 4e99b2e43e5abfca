// The Envoy bootstrap of the `envoy` template: what each section holds, how the revision, the ProxyConfig and the
// annotations change it, and that every bootstrap rendered here passes Envoy's schema.

import { beforeAll, describe, expect, it } from 'vitest';
import { type BootstrapValidator, loadBootstrapValidator } from '../src/bootstrap-validation/load.js';
import type { InjectorConfig } from '../src/config/schema.js';
import { type BootstrapOptions, type EnvoyBootstrap, BOOTSTRAP_PATH, DEFAULT_BOOTSTRAP_OPTIONS, renderPodBootstrap } from '../src/core/bootstrap.js';
import type { JsonObject } from '../src/core/json.js';
import { AnnotationError, InvalidBootstrapError } from '../src/errors.js';
import { configFor, container, podWith, review } from './helpers/pods.js';

let validator: BootstrapValidator;
beforeAll(() => {
  validator = loadBootstrapValidator();
});

/** Renders the pod's bootstrap and fails unless Envoy's schema accepts it. */
function render(pod: JsonObject, config: InjectorConfig = configFor(), options: BootstrapOptions = DEFAULT_BOOTSTRAP_OPTIONS): EnvoyBootstrap {
  const rendered = renderPodBootstrap({ pod, namespace: 'team', config, options });
  expect(validator.validate(rendered.bootstrap)).toEqual([]);
  return rendered;
}

const b = (rendered: EnvoyBootstrap): any => rendered.bootstrap;
const cluster = (rendered: EnvoyBootstrap, name: string): any => b(rendered).static_resources.clusters.find((c: any) => c.name === name);
const clusterNames = (rendered: EnvoyBootstrap): string[] => b(rendered).static_resources.clusters.map((c: any) => c.name);
const endpointOf = (c: any) => c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address;
const patterns = (rendered: EnvoyBootstrap): JsonObject[] => b(rendered).stats_config.stats_matcher.inclusion_list.patterns;
const flag = (rendered: EnvoyBootstrap, name: string) => {
  const at = rendered.args.indexOf(name);
  return at < 0 ? undefined : rendered.args[at + 1];
};
const withProxyConfig = (proxyConfig: string, labels: Record<string, string> = {}) =>
  podWith(labels, { 'proxy.istio.io/config': proxyConfig });

describe('the xds-grpc cluster', () => {
  it('points at istiod.istio-system.svc:15012 over TLS verified with the mesh CA for the default revision', () => {
    const xds = cluster(render(podWith()), 'xds-grpc');
    expect(endpointOf(xds)).toEqual({ socket_address: { address: 'istiod.istio-system.svc', port_value: 15012 } });
    const tls = xds.transport_socket.typed_config;
    expect(tls['@type']).toBe('type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');
    expect(tls.sni).toBe('istiod.istio-system.svc');
    expect(tls.common_tls_context.validation_context).toEqual({
      trusted_ca: { filename: '/var/run/secrets/istio/root-cert.pem' },
      match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'istiod.istio-system.svc' } }],
    });
  });

  it('points at istiod-canary.istio-system.svc:15012 for the canary revision', () => {
    const rendered = render(podWith(), configFor('canary'));
    const xds = cluster(rendered, 'xds-grpc');
    expect(endpointOf(xds)).toEqual({ socket_address: { address: 'istiod-canary.istio-system.svc', port_value: 15012 } });
    expect(xds.transport_socket.typed_config.sni).toBe('istiod-canary.istio-system.svc');
    expect(b(rendered).node.metadata.PILOT_SAN).toEqual(['istiod-canary.istio-system.svc']);
    expect(b(rendered).node.metadata.PROXY_CONFIG.discoveryAddress).toBe('istiod-canary.istio-system.svc:15012');
  });

  it('dials the plaintext port without TLS when the ProxyConfig says controlPlaneAuthPolicy NONE', () => {
    const config = configFor('', { proxyConfig: { discoveryAddress: 'istiod.istio-system.svc:15010', controlPlaneAuthPolicy: 'NONE' } });
    const rendered = render(podWith(), config);
    const xds = cluster(rendered, 'xds-grpc');
    expect(endpointOf(xds).socket_address.port_value).toBe(15010);
    expect(xds.transport_socket).toBeUndefined();
    expect(b(rendered).node.metadata.PILOT_SAN).toBeUndefined();
  });

  it('presents the workload certificate from SDS when an SDS socket is configured', () => {
    const rendered = render(podWith(), configFor(), { ...DEFAULT_BOOTSTRAP_OPTIONS, sdsSocketPath: './var/run/secrets/workload-spiffe-uds/socket' });
    expect(endpointOf(cluster(rendered, 'sds-grpc'))).toEqual({ pipe: { path: './var/run/secrets/workload-spiffe-uds/socket' } });
    const secrets = cluster(rendered, 'xds-grpc').transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs;
    expect(secrets[0].name).toBe('default');
    expect(secrets[0].sds_config.api_config_source.grpc_services).toEqual([{ envoy_grpc: { cluster_name: 'sds-grpc' } }]);
  });

  it('has no SDS cluster when none is configured', () => {
    expect(clusterNames(render(podWith()))).not.toContain('sds-grpc');
  });
});

describe('the sections of the bootstrap', () => {
  it('are all present, in the order of Istio\'s template', () => {
    expect(Object.keys(b(render(withProxyConfig('tracing: {}'))))).toEqual([
      'application_log_config',
      'node',
      'layered_runtime',
      'bootstrap_extensions',
      'stats_config',
      'admin',
      'dynamic_resources',
      'static_resources',
      'overload_manager',
      'deferred_stat_options',
    ]);
  });

  it('put the admin interface on 127.0.0.1:15000 with its access log to /dev/null', () => {
    const admin = b(render(podWith())).admin;
    expect(admin.address).toEqual({ socket_address: { address: '127.0.0.1', port_value: 15000 } });
    expect(admin.access_log).toEqual([
      {
        name: 'envoy.access_loggers.file',
        typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: '/dev/null' },
      },
    ]);
  });

  it('take LDS and CDS over ADS on xds-grpc with transport V3 and delta xDS by default', () => {
    const dynamic = b(render(podWith())).dynamic_resources;
    const ads = { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' };
    expect(dynamic.lds_config).toEqual(ads);
    expect(dynamic.cds_config).toEqual(ads);
    expect(dynamic.ads_config).toEqual({
      api_type: 'DELTA_GRPC',
      set_node_on_first_message_only: true,
      transport_api_version: 'V3',
      grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }],
    });
  });

  it('use state-of-the-world GRPC when proxyMetadata sets ISTIO_DELTA_XDS=false, as the agent does', () => {
    const rendered = render(withProxyConfig('proxyMetadata: {ISTIO_DELTA_XDS: "false"}'));
    expect(b(rendered).dynamic_resources.ads_config.api_type).toBe('GRPC');
  });

  it('serve /stats/prometheus on 15090 from the prometheus_stats cluster on the admin port', () => {
    const rendered = render(podWith());
    const [prometheus] = b(rendered).static_resources.listeners;
    expect(prometheus.name).toBe('0.0.0.0_15090');
    expect(prometheus.address.socket_address.port_value).toBe(15090);
    const manager = prometheus.filter_chains[0].filters[0].typed_config;
    expect(manager.route_config.virtual_hosts[0].routes).toEqual([{ match: { prefix: '/stats/prometheus' }, route: { cluster: 'prometheus_stats' } }]);
    expect(manager.http_filters.map((f: any) => f.name)).toEqual([
      'envoy.filters.http.compressor.brotli',
      'envoy.filters.http.compressor.zstd',
      'envoy.filters.http.compressor.gzip',
      'envoy.filters.http.router',
    ]);
    expect(endpointOf(cluster(rendered, 'prometheus_stats'))).toEqual({ socket_address: { protocol: 'TCP', address: '127.0.0.1', port_value: 15000 } });
  });

  it('serve /healthz/ready on 15021 from Envoy\'s own /ready, as no agent runs beside it', () => {
    const rendered = render(podWith());
    const readiness = b(rendered).static_resources.listeners[1];
    expect(readiness.name).toBe('0.0.0.0_15021');
    expect(readiness.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes).toEqual([
      { match: { prefix: '/healthz/ready' }, route: { cluster: 'envoy_admin', prefix_rewrite: '/ready' } },
    ]);
    expect(endpointOf(cluster(rendered, 'envoy_admin')).socket_address.port_value).toBe(15000);
  });

  it('move the admin port when the ProxyConfig sets proxyAdminPort', () => {
    const rendered = render(withProxyConfig('proxyAdminPort: 15005'));
    expect(b(rendered).admin.address.socket_address.port_value).toBe(15005);
    expect(endpointOf(cluster(rendered, 'prometheus_stats')).socket_address.port_value).toBe(15005);
  });

  it('limit downstream connections through the overload manager as Istio does', () => {
    expect(b(render(podWith())).overload_manager.resource_monitors[0].typed_config.max_active_downstream_connections).toBe(2147483647);
  });

  it('apply the ProxyConfig runtimeValues over Istio\'s runtime flags', () => {
    const rendered = render(withProxyConfig('runtimeValues: {"envoy.reloadable_features.fixed_heap_use_allocated": "", "x.y": "false"}'));
    const layer = b(rendered).layered_runtime.layers[0].static_layer;
    expect(layer['envoy.reloadable_features.fixed_heap_use_allocated']).toBeUndefined();
    expect(layer['x.y']).toBe(false);
    expect(layer['re2.max_program_size.error_level']).toBe('32768');
  });

  it('send stats to the ProxyConfig\'s statsd address', () => {
    const rendered = render(withProxyConfig('statsdUdpAddress: 10.1.1.1:9125'));
    expect(b(rendered).stats_sinks[0].typed_config.address).toEqual({ socket_address: { address: '10.1.1.1', port_value: 9125 } });
  });
});

describe('the node', () => {
  const deploymentPod = () => {
    const pod = podWith({ app: 'reviews', 'pod-template-hash': '5d4f8', 'istio-locality': 'eu-west1.eu-west1-b.rack7' });
    const metadata = pod.metadata as any;
    metadata.name = '';
    metadata.generateName = 'reviews-5d4f8-';
    metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'reviews-5d4f8', controller: true }];
    (pod.spec as any).serviceAccountName = 'bookinfo-reviews';
    return pod;
  };

  it('has its id filled in at run time from the pod\'s IP and name through --service-node', () => {
    const rendered = render(deploymentPod());
    const id = 'sidecar~$(INSTANCE_IP)~$(POD_NAME).team~team.svc.cluster.local';
    expect(b(rendered).node.id).toBe(id);
    expect(flag(rendered, '--service-node')).toBe(id);
    expect(rendered.env).toEqual([
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'INSTANCE_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    ]);
    expect(flag(rendered, '-c')).toBe(BOOTSTRAP_PATH);
  });

  it('keeps every other node field free of run-time placeholders', () => {
    const { node } = b(render(deploymentPod()));
    expect(JSON.stringify({ ...node, id: undefined })).not.toContain('$(');
  });

  it('is in the cluster <app>.<namespace> and the locality of its istio-locality label', () => {
    const { node } = b(render(deploymentPod()));
    expect(node.cluster).toBe('reviews.team');
    expect(node.locality).toEqual({ region: 'eu-west1', zone: 'eu-west1-b', sub_zone: 'rack7' });
  });

  it('announces the metadata istiod reads from an Istio proxy', () => {
    const { metadata } = b(render(deploymentPod())).node;
    expect(metadata).toMatchObject({
      NAMESPACE: 'team',
      SERVICE_ACCOUNT: 'bookinfo-reviews',
      LABELS: { app: 'reviews', 'istio-locality': 'eu-west1.eu-west1-b.rack7' },
      WORKLOAD_NAME: 'reviews',
      OWNER: 'kubernetes://apis/apps/v1/namespaces/team/deployments/reviews',
      MESH_ID: 'cluster.local',
      CLUSTER_ID: 'Kubernetes',
      INTERCEPTION_MODE: 'REDIRECT',
      APP_CONTAINERS: 'app',
      POD_PORTS: '[\n    {"name":"http","containerPort":8080}\n]',
      ISTIO_VERSION: '1.28.0',
      ENVOY_STATUS_PORT: 15021,
      ENVOY_PROMETHEUS_PORT: 15090,
      PILOT_SAN: ['istiod.istio-system.svc'],
    });
    expect(metadata.LABELS).not.toHaveProperty('pod-template-hash');
    expect(metadata.PROXY_CONFIG).toMatchObject({ discoveryAddress: 'istiod.istio-system.svc:15012', drainDuration: '45s' });
  });

  it('takes the interception mode from the pod\'s annotation and ISTIO_META_* from proxyMetadata', () => {
    const pod = podWith({}, {
      'sidecar.istio.io/interceptionMode': 'TPROXY',
      'proxy.istio.io/config': 'proxyMetadata: {ISTIO_META_DNS_CAPTURE: "true"}',
    });
    const { metadata } = b(render(pod)).node;
    expect(metadata.INTERCEPTION_MODE).toBe('TPROXY');
    expect(metadata.DNS_CAPTURE).toBe('true');
  });

  it('announces the same ISTIO_META_* values the sidecar template gives the agent', () => {
    const pod = deploymentPod();
    const { metadata } = b(render(pod)).node;
    const injected = review(pod, configFor(), { 'istio-injection': 'enabled' }).pod;
    const env = container(injected, 'istio-proxy').env as { name: string; value?: string }[];
    const announced = env.filter((e) => e.name.startsWith('ISTIO_META_') && e.value !== undefined);
    expect(announced.length).toBeGreaterThan(5);
    for (const { name, value } of announced) expect(metadata[name.slice('ISTIO_META_'.length)]).toBe(value);
  });

  it('uses the ProxyConfig\'s serviceCluster when it is not the default', () => {
    expect(b(render(withProxyConfig('serviceCluster: checkout', { app: 'web' }))).node.cluster).toBe('checkout');
  });
});

describe('tracing', () => {
  it('reports to Istio\'s default zipkin when the ProxyConfig keeps Istio\'s default tracer', () => {
    const rendered = render(podWith());
    expect(b(rendered).tracing.http.typed_config).toEqual({
      '@type': 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig',
      collector_cluster: 'zipkin',
      collector_endpoint: '/api/v2/spans',
      collector_endpoint_version: 'HTTP_JSON',
      trace_id_128bit: true,
      shared_span_context: false,
    });
    expect(endpointOf(cluster(rendered, 'zipkin'))).toEqual({ socket_address: { address: 'zipkin.istio-system', port_value: 9411 } });
  });

  it('is off, with no tracer cluster, when the pod\'s proxy.istio.io/config names no tracer', () => {
    const rendered = render(withProxyConfig('tracing: {}'));
    expect(b(rendered).tracing).toBeUndefined();
    expect(clusterNames(rendered)).toEqual(['prometheus_stats', 'envoy_admin', 'xds-grpc']);
  });

  it('is off for the whole mesh when the config\'s ProxyConfig clears the tracer', () => {
    expect(b(render(podWith(), configFor('', { proxyConfig: { tracing: {} } }))).tracing).toBeUndefined();
  });

  it('reports to datadog under the node\'s cluster name when the annotation picks datadog', () => {
    const rendered = render(withProxyConfig('tracing: {datadog: {address: "datadog-agent.datadog:8126"}}', { app: 'web' }));
    expect(b(rendered).tracing.http).toEqual({
      name: 'envoy.tracers.datadog',
      typed_config: { '@type': 'type.googleapis.com/envoy.config.trace.v3.DatadogConfig', collector_cluster: 'datadog_agent', service_name: 'web.team' },
    });
    expect(endpointOf(cluster(rendered, 'datadog_agent'))).toEqual({ socket_address: { address: 'datadog-agent.datadog', port_value: 8126 } });
    expect(clusterNames(rendered)).not.toContain('zipkin');
  });

  it('reports to an OpenTelemetry collector over gRPC when the options name one', () => {
    const rendered = render(podWith({ app: 'web' }), configFor(), { ...DEFAULT_BOOTSTRAP_OPTIONS, openTelemetryCollector: 'otel-collector.observability:4317' });
    expect(b(rendered).tracing.http).toEqual({
      name: 'envoy.tracers.opentelemetry',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
        grpc_service: { envoy_grpc: { cluster_name: 'opentelemetry' } },
        service_name: 'web.team',
      },
    });
    const collector = cluster(rendered, 'opentelemetry');
    expect(endpointOf(collector)).toEqual({ socket_address: { address: 'otel-collector.observability', port_value: 4317 } });
    expect(collector.typed_extension_protocol_options).toBeDefined();
  });

  it('refuses an address Kubernetes would never expand, such as Istio\'s $(HOST_IP) default for datadog', () => {
    const pod = withProxyConfig('tracing: {datadog: {address: "$(HOST_IP):8126"}}');
    expect(() => renderPodBootstrap({ pod, namespace: 'team', config: configFor() })).toThrow(InvalidBootstrapError);
    expect(() => renderPodBootstrap({ pod, namespace: 'team', config: configFor() })).toThrow(/tracing\.datadog\.address.*\$\(VAR\)/);
  });

  it('refuses a tracer Envoy no longer ships', () => {
    const pod = withProxyConfig('tracing: {lightstep: {address: "lightstep:8080"}}');
    expect(() => renderPodBootstrap({ pod, namespace: 'team', config: configFor() })).toThrow(/tracing\.lightstep: Envoy no longer ships this tracer/);
  });
});

describe('stats', () => {
  it('keeps Istio\'s default inclusion list when nothing asks for more', () => {
    expect(patterns(render(podWith()))).toEqual([
      { prefix: 'reporter=' },
      { prefix: 'cluster_manager' },
      { prefix: 'listener_manager' },
      { prefix: 'server' },
      { prefix: 'cluster.xds-grpc' },
      { prefix: 'wasm' },
      { suffix: 'rbac.allowed' },
      { suffix: 'rbac.denied' },
      { suffix: 'shadow_allowed' },
      { suffix: 'shadow_denied' },
      { safe_regex: { regex: 'vhost\\..*\\.route\\..*' } },
      { prefix: 'component' },
      { prefix: 'istio' },
    ]);
  });

  it('puts the sidecar.istio.io/statsInclusion* annotations before the required patterns of each kind', () => {
    const pod = podWith({}, {
      'sidecar.istio.io/statsInclusionPrefixes': 'upstream_cx, http.inbound',
      'sidecar.istio.io/statsInclusionSuffixes': 'upstream_rq_time',
      'sidecar.istio.io/statsInclusionRegexps': 'http\\.[0-9.]*_8080\\.downstream_rq_time',
    });
    expect(patterns(render(pod))).toEqual([
      { prefix: 'reporter=' },
      { prefix: 'upstream_cx' },
      { prefix: 'http.inbound' },
      { prefix: 'cluster_manager' },
      { prefix: 'listener_manager' },
      { prefix: 'server' },
      { prefix: 'cluster.xds-grpc' },
      { prefix: 'wasm' },
      { suffix: 'upstream_rq_time' },
      { suffix: 'rbac.allowed' },
      { suffix: 'rbac.denied' },
      { suffix: 'shadow_allowed' },
      { suffix: 'shadow_denied' },
      { safe_regex: { regex: 'http\\.[0-9.]*_8080\\.downstream_rq_time' } },
      { safe_regex: { regex: 'vhost\\..*\\.route\\..*' } },
      { prefix: 'component' },
      { prefix: 'istio' },
    ]);
  });

  it('lets an annotation replace the ProxyConfig\'s list of the same kind', () => {
    const pod = podWith({}, {
      'proxy.istio.io/config': 'proxyStatsMatcher: {inclusionPrefixes: [from_config], inclusionSuffixes: [kept_suffix]}',
      'sidecar.istio.io/statsInclusionPrefixes': 'from_annotation',
    });
    const rendered = patterns(render(pod));
    expect(rendered).toContainEqual({ prefix: 'from_annotation' });
    expect(rendered).not.toContainEqual({ prefix: 'from_config' });
    expect(rendered).toContainEqual({ suffix: 'kept_suffix' });
  });

  it('appends the extraStatTags annotation to the ProxyConfig\'s tags, between Istio\'s two groups of tags', () => {
    const pod = podWith({}, { 'proxy.istio.io/config': 'extraStatTags: [dlp_success]', 'sidecar.istio.io/extraStatTags': 'dlp_status, dlp_error' });
    const tags = b(render(pod)).stats_config.stats_tags.map((t: any) => t.tag_name);
    expect(tags.slice(8, 13)).toEqual(['mongo_prefix', 'dlp_success', 'dlp_status', 'dlp_error', 'cache']);
    expect(b(render(pod)).stats_config.stats_tags[9]).toEqual({ tag_name: 'dlp_success', regex: '(dlp_success=\\.=(.*?);\\.;)' });
  });

  it('sets histogram buckets from sidecar.istio.io/statsHistogramBuckets, sorted by prefix', () => {
    const pod = podWith({}, { 'sidecar.istio.io/statsHistogramBuckets': '{"istio":[1,5,10],"envoy":[1,10,100]}' });
    expect(b(render(pod)).stats_config.histogram_bucket_settings).toEqual([
      { match: { prefix: 'envoy' }, buckets: [1, 10, 100] },
      { match: { prefix: 'istio' }, buckets: [1, 5, 10] },
    ]);
  });

  it('refuses {pod_ip}, which only the running pod could fill in', () => {
    const pod = podWith({}, { 'sidecar.istio.io/statsInclusionPrefixes': 'http.{pod_ip}_' });
    expect(() => renderPodBootstrap({ pod, namespace: 'team', config: configFor() })).toThrow(AnnotationError);
  });

  it('refuses histogram buckets that are not JSON, and leaves bad bucket values to the schema check', () => {
    const notJson = podWith({}, { 'sidecar.istio.io/statsHistogramBuckets': 'istio=1,5' });
    expect(() => renderPodBootstrap({ pod: notJson, namespace: 'team', config: configFor() })).toThrow(AnnotationError);
    const negative = podWith({}, { 'sidecar.istio.io/statsHistogramBuckets': '{"istio":[-1]}' });
    const { bootstrap } = renderPodBootstrap({ pod: negative, namespace: 'team', config: configFor() });
    expect(validator.validate(bootstrap).map((p) => p.path)).toEqual(['stats_config.histogram_bucket_settings[0].buckets[0]']);
  });
});

describe('concurrency and drain time', () => {
  it('pass Istio\'s defaults to Envoy: 2 workers and 45 seconds of drain', () => {
    const rendered = render(podWith());
    expect(flag(rendered, '--concurrency')).toBe('2');
    expect(flag(rendered, '--drain-time-s')).toBe('45');
    expect(flag(rendered, '--drain-strategy')).toBe('immediate');
  });

  it('follow proxy.istio.io/config concurrency and drainDuration', () => {
    const rendered = render(withProxyConfig('concurrency: 4\ndrainDuration: 1m30s'));
    expect(flag(rendered, '--concurrency')).toBe('4');
    expect(flag(rendered, '--drain-time-s')).toBe('90');
    expect(b(rendered).node.metadata.PROXY_CONFIG).toMatchObject({ concurrency: 4, drainDuration: '1m30s' });
  });

  it('leave Envoy its own default of every core for concurrency 0', () => {
    expect(flag(render(withProxyConfig('concurrency: 0')), '--concurrency')).toBeUndefined();
  });
});

describe('a bootstrap Envoy would refuse', () => {
  it('is caught by the schema check with the path that holds the problem', () => {
    const pod = withProxyConfig('tracing: {zipkin: {address: "zipkin.tracing:70000"}}');
    const { bootstrap } = renderPodBootstrap({ pod, namespace: 'team', config: configFor() });
    expect(() => validator.assertValid(bootstrap)).toThrow(
      /static_resources\.clusters\[3\]\.load_assignment\.endpoints\[0\]\.lb_endpoints\[0\]\.endpoint\.address\.socket_address\.port_value: 70000 is out of range/,
    );
  });
});
