// The shape of what the default template injects: istio-init's istio-iptables arguments and privileges, and
// istio-proxy's arguments, environment, probes, ports, identity and resources, for each revision.

import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../src/core/json.js';
import { configFor, container, podWith, review } from './helpers/pods.js';

const enabled = { 'istio-injection': 'enabled' };
const envOf = (c: JsonObject) =>
  Object.fromEntries((c.env as { name: string; value?: string }[]).map((e) => [e.name, e.value ?? e]));

describe('istio-init', () => {
  it('redirects inbound to 15006 and outbound to 15001, exempting uid 1337, with the default ranges and ports', () => {
    const init = container(review(podWith(), configFor(''), enabled).pod, 'istio-init');
    expect(init.args).toEqual([
      'istio-iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT',
      '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020', '--log_output_level=default:info',
    ]);
  });

  it('runs as root with only NET_ADMIN and NET_RAW', () => {
    const init = container(review(podWith(), configFor(''), enabled).pod, 'istio-init');
    expect(init.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: false,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
    });
  });

  it('takes the traffic annotations as istio-iptables flags, in Istio order', () => {
    const pod = podWith({}, {
      'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0/8,192.168.0.0/16',
      'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.96.0.1/32',
      'traffic.sidecar.istio.io/includeInboundPorts': '80,8080',
      'traffic.sidecar.istio.io/excludeInboundPorts': '4,5,6',
      'traffic.sidecar.istio.io/includeOutboundPorts': '443',
      'traffic.sidecar.istio.io/excludeOutboundPorts': '3306',
      'traffic.sidecar.istio.io/kubevirtInterfaces': 'old0',
      'istio.io/reroute-virtual-interfaces': 'net1,net2',
      'traffic.sidecar.istio.io/excludeInterfaces': 'eth9',
      'status.sidecar.istio.io/port': '15555',
    });
    const args = container(review(pod, configFor(''), enabled).pod, 'istio-init').args as string[];
    expect(args.slice(9)).toEqual([
      '-i', '10.0.0.0/8,192.168.0.0/16', '-x', '10.96.0.1/32', '-b', '80,8080', '-d', '15090,15021,4,5,6,15555',
      '-q', '443', '-o', '3306', '-k', 'net1,net2', '-c', 'eth9', '--log_output_level=default:info',
    ]);
  });
});

describe('istio-proxy', () => {
  it('runs "proxy sidecar" as 1337:1337 with a read-only root and no capabilities', () => {
    const proxy = container(review(podWith(), configFor(''), enabled).pod, 'istio-proxy');
    expect((proxy.args as string[]).slice(0, 4)).toEqual(['proxy', 'sidecar', '--domain', '$(POD_NAMESPACE).svc.cluster.local']);
    expect(proxy.securityContext).toMatchObject({
      runAsUser: 1337,
      runAsGroup: 1337,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(proxy.ports).toEqual([{ containerPort: 15090, name: 'http-envoy-prom', protocol: 'TCP' }]);
    expect(proxy.resources).toEqual({ limits: { cpu: '2', memory: '1Gi' }, requests: { cpu: '100m', memory: '128Mi' } });
  });

  it('is ready and started when Envoy answers 15021 /healthz/ready', () => {
    const proxy = container(review(podWith(), configFor(''), enabled).pod, 'istio-proxy');
    const httpGet = { path: '/healthz/ready', port: 15021 };
    expect(proxy.readinessProbe).toEqual({ failureThreshold: 4, httpGet, periodSeconds: 15, timeoutSeconds: 3 });
    expect(proxy.startupProbe).toEqual({ failureThreshold: 600, httpGet, periodSeconds: 1, timeoutSeconds: 3 });
  });

  it('has no readiness or startup probe when the status port is 0', () => {
    const pod = podWith({}, { 'status.sidecar.istio.io/port': '0' });
    const proxy = container(review(pod, configFor(''), enabled).pod, 'istio-proxy');
    expect(proxy.readinessProbe).toBeUndefined();
    expect(proxy.startupProbe).toBeUndefined();
    expect((container(review(pod, configFor(''), enabled).pod, 'istio-init').args as string[])).toContain('15090,15021');
  });

  it.each([
    ['', 'istiod.istio-system.svc:15012', '{}\n'],
    ['canary', 'istiod-canary.istio-system.svc:15012', '{"discoveryAddress":"istiod-canary.istio-system.svc:15012"}\n'],
  ])('revision %j talks to %s for certificates and configuration', (revision, address, proxyConfig) => {
    const labels: Record<string, string> = revision ? { 'istio.io/rev': revision } : {};
    const pod = review(podWith(labels), configFor(revision), revision ? {} : enabled).pod;
    const env = envOf(container(pod, 'istio-proxy'));
    expect(env.CA_ADDR).toBe(address);
    expect(env.PROXY_CONFIG).toBe(proxyConfig);
  });

  it('describes the workload to the agent: ports, app containers, owner and mesh', () => {
    const pod = podWith({ app: 'reviews' }, {}, {
      containers: [
        { name: 'web', image: 'w', ports: [{ name: 'http', containerPort: 80, protocol: 'TCP' }] },
        { name: 'metrics', image: 'm', ports: [{ containerPort: 9090 }] },
      ],
    });
    Object.assign(pod.metadata as JsonObject, {
      name: undefined,
      generateName: 'reviews-v1-7d4b9c-',
      labels: { app: 'reviews', 'pod-template-hash': '7d4b9c' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'reviews-v1-7d4b9c', controller: true, uid: 'u' }],
    });
    const env = envOf(container(review(pod, configFor(''), enabled).pod, 'istio-proxy'));
    expect(env.ISTIO_META_POD_PORTS).toBe('[\n    {"name":"http","containerPort":80,"protocol":"TCP"}\n    ,{"containerPort":9090}\n]');
    expect(env.ISTIO_META_APP_CONTAINERS).toBe('web,metrics');
    expect(env.ISTIO_META_WORKLOAD_NAME).toBe('reviews-v1');
    expect(env.ISTIO_META_OWNER).toBe('kubernetes://apis/apps/v1/namespaces/team/deployments/reviews-v1');
    expect(env.ISTIO_META_MESH_ID).toBe('cluster.local');
  });
});

describe('pod metadata', () => {
  it('labels the pod for mTLS and the canonical service, keeping values the pod already set', () => {
    const pod = podWith({ 'app.kubernetes.io/name': '-reviews.', version: 'v2', 'security.istio.io/tlsMode': 'disabled' });
    const labels = (review(pod, configFor(''), enabled).pod.metadata as { labels: Record<string, string> }).labels;
    expect(labels['security.istio.io/tlsMode']).toBe('disabled');
    expect(labels['service.istio.io/canonical-name']).toBe('reviews');
    expect(labels['service.istio.io/canonical-revision']).toBe('v2');
  });

  it('names the first app container as the default one unless the pod already chose', () => {
    const annotations = (pod: JsonObject) =>
      (review(pod, configFor(''), enabled).pod.metadata as { annotations: Record<string, string> }).annotations;
    expect(annotations(podWith())['kubectl.kubernetes.io/default-container']).toBe('app');
    const chosen = podWith({}, { 'kubectl.kubernetes.io/default-container': 'other' });
    expect(annotations(chosen)['kubectl.kubernetes.io/default-container']).toBe('other');
    expect(annotations(chosen)['kubectl.kubernetes.io/default-logs-container']).toBe('app');
  });
});
