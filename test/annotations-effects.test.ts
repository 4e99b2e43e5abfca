// Every pod annotation Istio honours (istio-injector.md §4.2) has its effect here, and where Istio validates it
// (§4.1), accepted and refused values; refusals name the annotation, the value and what is accepted.

import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../src/core/json.js';
import { reviewPod } from '../src/core/review-pod.js';
import { configFor, container, names, podWith, review } from './helpers/pods.js';

const enabled = { 'istio-injection': 'enabled' };
const injectWith = (annotations: Record<string, string>, config = configFor('')) => {
  const result = review(podWith({ app: 'web' }, annotations), config, enabled);
  if (result.review.outcome !== 'injected') throw new Error(`expected injection, got ${result.review.outcome}`);
  return result;
};
const refusal = (annotations: Record<string, string>) => {
  const result = reviewPod({ pod: podWith({}, annotations), namespace: 'team', namespaceLabels: enabled, config: configFor('') });
  return result.outcome === 'refused' ? result.error.message : undefined;
};
const proxy = (annotations: Record<string, string>, config = configFor('')) => container(injectWith(annotations, config).pod, 'istio-proxy');
const env = (c: JsonObject) => Object.fromEntries((c.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]));
const annotationsOf = (pod: JsonObject) => (pod.metadata as { annotations: Record<string, string> }).annotations;

describe('proxy container annotations', () => {
  it('sidecar.istio.io/proxyImage replaces the image of both injected containers when it holds a registry path', () => {
    const { pod } = injectWith({ 'sidecar.istio.io/proxyImage': 'registry.example.com/proxy:1' });
    expect(container(pod, 'istio-proxy').image).toBe('registry.example.com/proxy:1');
    expect(container(pod, 'istio-init').image).toBe('registry.example.com/proxy:1');
  });

  it.each([
    ['debug', 'docker.io/istio/proxyv2:1.28.0-debug'],
    ['distroless', 'docker.io/istio/proxyv2:1.28.0-distroless'],
    ['default', 'docker.io/istio/proxyv2:1.28.0'],
  ])('sidecar.istio.io/proxyImageType=%s picks the %s image', (type, image) => {
    expect(proxy({ 'sidecar.istio.io/proxyImageType': type }).image).toBe(image);
  });

  it('the resource annotations replace the configured resources of istio-proxy and istio-init', () => {
    const { pod } = injectWith({ 'sidecar.istio.io/proxyCPU': '250m', 'sidecar.istio.io/proxyMemoryLimit': '2Gi' });
    const expected = { requests: { cpu: '250m' }, limits: { memory: '2Gi' } };
    expect(container(pod, 'istio-proxy').resources).toEqual(expected);
    expect(container(pod, 'istio-init').resources).toEqual(expected);
  });

  it('the log level annotations set the proxy, component and agent log levels', () => {
    const { pod } = injectWith({
      'sidecar.istio.io/logLevel': 'debug',
      'sidecar.istio.io/componentLogLevel': 'upstream:trace',
      'sidecar.istio.io/agentLogLevel': 'default:debug',
    });
    expect(container(pod, 'istio-proxy').args).toEqual(
      expect.arrayContaining(['--proxyLogLevel=debug', '--proxyComponentLogLevel=upstream:trace', '--log_output_level=default:debug']),
    );
    expect((container(pod, 'istio-init').args as string[]).at(-1)).toBe('--log_output_level=default:debug');
  });

  it('sidecar.istio.io/interceptionMode=TPROXY runs the proxy as root with NET_ADMIN', () => {
    const sc = proxy({ 'sidecar.istio.io/interceptionMode': 'TPROXY' }).securityContext as JsonObject;
    expect(sc).toMatchObject({ runAsUser: 0, runAsNonRoot: false, capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] } });
    expect(env(proxy({ 'sidecar.istio.io/interceptionMode': 'TPROXY' })).ISTIO_META_INTERCEPTION_MODE).toBe('TPROXY');
  });

  it('sidecar.istio.io/capNetBindService=true lets the proxy bind low ports', () => {
    const sc = proxy({ 'sidecar.istio.io/capNetBindService': 'true' }).securityContext as JsonObject;
    expect(sc).toMatchObject({ runAsUser: 0, capabilities: { add: ['NET_BIND_SERVICE'], drop: ['ALL'] } });
  });

  it('sidecar.istio.io/bootstrapOverride mounts the named ConfigMap and points the agent at it', () => {
    const { pod } = injectWith({ 'sidecar.istio.io/bootstrapOverride': 'my-bootstrap' });
    expect((pod.spec as { volumes: JsonObject[] }).volumes).toContainEqual({ configMap: { name: 'my-bootstrap' }, name: 'custom-bootstrap-volume' });
    expect(container(pod, 'istio-proxy').volumeMounts).toContainEqual({ mountPath: '/etc/istio/custom-bootstrap', name: 'custom-bootstrap-volume' });
    expect(env(container(pod, 'istio-proxy')).ISTIO_BOOTSTRAP_OVERRIDE).toBe('/etc/istio/custom-bootstrap/custom_bootstrap.json');
  });

  it('sidecar.istio.io/userVolume and userVolumeMount add volumes and mounts named by their keys', () => {
    const { pod } = injectWith({
      'sidecar.istio.io/userVolume': '{"extra":{"configMap":{"name":"extra-cm"}}}',
      'sidecar.istio.io/userVolumeMount': '{"extra":{"mountPath":"/etc/extra","readOnly":true}}',
    });
    expect((pod.spec as { volumes: JsonObject[] }).volumes).toContainEqual({ configMap: { name: 'extra-cm' }, name: 'extra' });
    expect(container(pod, 'istio-proxy').volumeMounts).toContainEqual({ mountPath: '/etc/extra', readOnly: true, name: 'extra' });
    expect(refusal({ 'sidecar.istio.io/userVolume': '[1,2]' })).toMatch(/sidecar.istio.io\/userVolume: invalid value "\[1,2\]": expected a JSON object/);
  });

  it('proxy.istio.io/config sets the discovery address, hold and metadata the agent receives', () => {
    const config = configFor('', { nativeSidecars: false });
    const { pod } = injectWith({ 'proxy.istio.io/config': 'discoveryAddress: istiod-x.mesh.svc:15012\nholdApplicationUntilProxyStarts: true\nproxyMetadata:\n  FOO: bar\n' }, config);
    const p = container(pod, 'istio-proxy');
    expect(env(p).PROXY_CONFIG).toBe('{"discoveryAddress":"istiod-x.mesh.svc:15012","proxyMetadata":{"FOO":"bar"},"holdApplicationUntilProxyStarts":true}\n');
    expect(env(p).FOO).toBe('bar');
    expect(names((pod.spec as { containers: unknown }).containers)[0]).toBe('istio-proxy');
    expect(p.lifecycle).toEqual({ postStart: { exec: { command: ['pilot-agent', 'wait'] } } });
  });

  it('proxy.istio.io/config is refused when it is not a valid ProxyConfig, naming the field', () => {
    expect(refusal({ 'proxy.istio.io/config': 'drainDuration: soon' })).toMatch(/proxy.istio.io\/config: drainDuration must be a duration/);
    expect(refusal({ 'proxy.istio.io/config': 'notAField: 1' })).toMatch(/unknown field "notAField"/);
    expect(refusal({ 'proxy.istio.io/config': '[unclosed' })).toMatch(/proxy.istio.io\/config/);
  });
});

describe('status and readiness annotations', () => {
  it('status.sidecar.istio.io/port moves the agent port for drain, exclusion and probes', () => {
    const { pod } = injectWith({ 'status.sidecar.istio.io/port': '15555' });
    expect((container(pod, 'istio-proxy').lifecycle as JsonObject)).toMatchObject({ preStop: { exec: { command: expect.arrayContaining(['--debug-port=15555']) } } });
    expect(container(pod, 'istio-init').args).toContain('15090,15021,15555');
  });

  it('readiness.status.sidecar.istio.io/* tune the proxy readiness probe; bad values are refused', () => {
    const p = proxy({
      'readiness.status.sidecar.istio.io/initialDelaySeconds': '5',
      'readiness.status.sidecar.istio.io/periodSeconds': '7',
      'readiness.status.sidecar.istio.io/failureThreshold': '9',
    });
    expect(p.readinessProbe).toMatchObject({ initialDelaySeconds: 5, periodSeconds: 7, failureThreshold: 9 });
    expect(refusal({ 'readiness.status.sidecar.istio.io/failureThreshold': '-1' })).toMatch(/failureThreshold: invalid value "-1": expected an integer/);
  });
});

describe('probe rewriting', () => {
  const probed = (annotations: Record<string, string> = {}) =>
    podWith({}, annotations, {
      containers: [
        {
          name: 'web',
          image: 'w',
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/ready', port: 'http', scheme: 'HTTPS' }, periodSeconds: 3 },
          livenessProbe: { tcpSocket: { port: 8081 } },
          startupProbe: { grpc: { port: 9090 }, timeoutSeconds: 2 },
        },
      ],
    });

  it('points HTTP, TCP and gRPC probes at the agent and tells it the originals', () => {
    const { pod } = review(probed(), configFor(''), enabled);
    const web = container(pod, 'web');
    expect(web.readinessProbe).toEqual({ httpGet: { path: '/app-health/web/readyz', port: 15020, scheme: 'HTTP' }, periodSeconds: 3 });
    expect(web.livenessProbe).toEqual({ httpGet: { path: '/app-health/web/livez', port: 15020 } });
    expect(web.startupProbe).toEqual({ httpGet: { path: '/app-health/web/startupz', port: 15020 }, timeoutSeconds: 2 });
    expect(JSON.parse(env(container(pod, 'istio-proxy')).ISTIO_KUBE_APP_PROBERS as string)).toEqual({
      '/app-health/web/livez': { tcpSocket: { port: 8081 } },
      '/app-health/web/readyz': { httpGet: { path: '/ready', port: 8080, scheme: 'HTTPS' } },
      '/app-health/web/startupz': { grpc: { port: 9090 }, timeoutSeconds: 2 },
    });
  });

  it('sidecar.istio.io/rewriteAppHTTPProbers=false leaves probes alone', () => {
    const { pod } = review(probed({ 'sidecar.istio.io/rewriteAppHTTPProbers': 'false' }), configFor(''), enabled);
    expect(container(pod, 'web').livenessProbe).toEqual({ tcpSocket: { port: 8081 } });
    expect(env(container(pod, 'istio-proxy')).ISTIO_KUBE_APP_PROBERS).toBeUndefined();
  });
});

describe('templates', () => {
  it('inject.istio.io/templates=gateway runs the proxy as a router with no init container', () => {
    const { pod } = injectWith({ 'inject.istio.io/templates': 'gateway' });
    const p = container(pod, 'istio-proxy');
    expect((p.args as string[]).slice(0, 2)).toEqual(['proxy', 'router']);
    expect((pod.spec as { initContainers?: unknown }).initContainers).toBeUndefined();
    expect((pod.spec as { securityContext: unknown }).securityContext).toEqual({
      sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }],
    });
  });

  it('an unknown template is refused, listing the templates there are', () => {
    expect(refusal({ 'inject.istio.io/templates': 'sidecar,nope' })).toMatch(/requested template "nope" not found; have sidecar, gateway, envoy, grpc-simple/);
  });

  it('an operator template from the config adds its containers, volumes and per-container env', () => {
    const config = configFor('', {
      templates: {
        debug: {
          eachContainer: { env: [{ name: 'DEBUG', value: '1' }] },
          spec: { volumes: [{ name: 'scratch', emptyDir: {} }] },
        },
      },
    });
    const { pod } = injectWith({ 'inject.istio.io/templates': 'sidecar,debug' }, config);
    expect(env(container(pod, 'app')).DEBUG).toBe('1');
    expect(names((pod.spec as { volumes: unknown }).volumes)).toContain('scratch');
    expect(names((pod.spec as { initContainers: unknown }).initContainers)).toEqual(['istio-init', 'istio-proxy']);
  });
});

describe('prometheus merge', () => {
  it('moves the application scrape settings to the agent and scrapes the agent', () => {
    const { pod } = injectWith({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090', 'prometheus.io/path': '/m' });
    expect(annotationsOf(pod)).toMatchObject({ 'prometheus.io/port': '15020', 'prometheus.io/path': '/stats/prometheus', 'prometheus.io/scrape': 'true' });
    expect(env(container(pod, 'istio-proxy')).ISTIO_PROMETHEUS_ANNOTATIONS).toBe('{"scrape":"true","path":"/m","port":"9090"}');
  });

  it('leaves a pod alone that says scrape false or turns the merge off', () => {
    expect(annotationsOf(injectWith({ 'prometheus.io/scrape': 'false' }).pod)['prometheus.io/port']).toBeUndefined();
    expect(annotationsOf(injectWith({ 'prometheus.istio.io/merge-metrics': 'false' }).pod)['prometheus.io/port']).toBeUndefined();
    expect(refusal({ 'prometheus.istio.io/merge-metrics': 'maybe' })).toMatch(/merge-metrics: invalid value "maybe": expected true or false/);
  });

  it('refuses scraping a port Istio owns', () => {
    expect(refusal({ 'prometheus.io/port': '15090' })).toMatch(/port 15090 is reserved for Istio/);
  });
});

describe('accepted values of the validated annotations', () => {
  it.each([
    ['sidecar.istio.io/interceptionMode', 'NONE'],
    ['status.sidecar.istio.io/port', '0'],
    ['status.sidecar.istio.io/port', ' 15020 '],
    ['readiness.status.sidecar.istio.io/initialDelaySeconds', '4294967295'],
    ['traffic.sidecar.istio.io/includeOutboundIPRanges', '*'],
    ['traffic.sidecar.istio.io/includeOutboundIPRanges', ''],
    ['traffic.sidecar.istio.io/includeOutboundIPRanges', '127.0.0.1/24,fd00::/8'],
    ['traffic.sidecar.istio.io/excludeOutboundIPRanges', '10.0.0.0/8'],
    ['traffic.sidecar.istio.io/includeInboundPorts', '*'],
    ['traffic.sidecar.istio.io/includeInboundPorts', '1, 2 ,3'],
    ['traffic.sidecar.istio.io/excludeInboundPorts', ''],
    ['traffic.sidecar.istio.io/excludeOutboundPorts', '65535'],
    ['traffic.sidecar.istio.io/excludeInterfaces', 'eth0, net1.2'],
    ['istio.io/reroute-virtual-interfaces', 'tap0'],
    ['prometheus.istio.io/merge-metrics', 'True'],
    ['sidecar.istio.io/proxyCPU', '1.5'],
    ['sidecar.istio.io/proxyMemory', '1Mi'],
    ['sidecar.istio.io/proxyMemoryLimit', '2Gi'],
    ['sidecar.istio.io/proxyCPULimit', '4000m'],
  ])('%s=%j is accepted', (name, value) => {
    expect(refusal({ [name]: value })).toBeUndefined();
  });
});

describe('user-supplied istio-proxy and istio-init', () => {
  const withOverride = () =>
    podWith({}, {}, {
      containers: [
        { name: 'app', image: 'a' },
        { name: 'istio-proxy', image: 'auto', resources: { requests: { cpu: '123m' } }, securityContext: { runAsUser: 1234 } },
      ],
    });

  it('are merged over what the template renders and recorded for re-injection', () => {
    const { pod } = review(withOverride(), configFor(''), enabled);
    const p = container(pod, 'istio-proxy');
    expect(p.image).toBe('docker.io/istio/proxyv2:1.28.0');
    expect(p.resources).toEqual({ limits: { cpu: '2', memory: '1Gi' }, requests: { cpu: '123m', memory: '128Mi' } });
    expect(p.securityContext).toMatchObject({ runAsUser: 1234, runAsGroup: 1337 });
    expect(container(pod, 'istio-init').args).toEqual(expect.arrayContaining(['-u', '1234']));
    expect(names((pod.spec as { containers: unknown }).containers)).toEqual(['app']);
    expect(JSON.parse(annotationsOf(pod)['proxy.istio.io/overrides'] as string)).toEqual({
      initContainers: [{ name: 'istio-proxy', resources: { requests: { cpu: '123m' } }, securityContext: { runAsUser: 1234 } }],
    });
  });

  it('are applied again from the record when the pod is re-injected', () => {
    const once = review(withOverride(), configFor(''), enabled).pod;
    const twice = review(once, configFor('', { proxy: { logLevel: 'debug' } }), enabled).pod;
    expect(container(twice, 'istio-proxy').resources).toEqual(container(once, 'istio-proxy').resources);
    expect(container(twice, 'istio-proxy').args).toContain('--proxyLogLevel=debug');
  });
});

describe('labels the template reads', () => {
  it('service.istio.io/workload-name names the workload to the agent', () => {
    const { pod } = review(podWith({ 'service.istio.io/workload-name': 'orders' }), configFor(''), enabled);
    expect(env(container(pod, 'istio-proxy')).ISTIO_META_WORKLOAD_NAME).toBe('orders');
  });

  it('topology.istio.io/network puts the pod on that network, last in the proxy env', () => {
    const { pod } = review(podWith({ 'topology.istio.io/network': 'east' }), configFor(''), enabled);
    const proxyEnv = container(pod, 'istio-proxy').env as { name: string; value?: string }[];
    expect(proxyEnv.at(-1)).toEqual({ name: 'ISTIO_META_NETWORK', value: 'east' });
    expect((pod.metadata as { labels: Record<string, string> }).labels['topology.istio.io/network']).toBe('east');
  });
});

describe('warnings for values that are accepted but ignored or deprecated', () => {
  it.each([
    ['readiness.status.sidecar.istio.io/applicationPorts', '8080', /ignored/],
    ['traffic.sidecar.istio.io/kubevirtInterfaces', 'net1', /deprecated: use istio.io\/reroute-virtual-interfaces/],
    ['sidecar.istio.io/enableCoreDump', 'true', /ignored/],
    ['sidecar.istio.io/inject', 'true', /deprecated: use the label/],
  ])('%s=%s is accepted with a warning', (name, value, warning) => {
    const result = injectWith({ [name]: value });
    expect(result.review.decision.warnings.join('\n')).toMatch(warning);
  });
});
