// The envoy template: istio-proxy runs plain Envoy from a bootstrap the pod carries in an annotation, projected
// to /etc/istio/proxy/envoy-rev0.json; the bootstrap passes Envoy's schema check before the pod exists, and a pod
// whose settings would break it is refused with the reason.

import { beforeAll, describe, expect, it } from 'vitest';
import { bootstrapProblems, loadBootstrapValidator } from '../src/bootstrap-validation/load.js';
import type { JsonObject } from '../src/core/json.js';
import { reviewPod } from '../src/core/review-pod.js';
import { BOOTSTRAP_ANNOTATION } from '../src/core/templates/envoy.js';
import { configFor, container, podWith } from './helpers/pods.js';
import jsonpatch from 'fast-json-patch';

const envoyPod = (annotations: Record<string, string> = {}, spec: JsonObject = {}) =>
  podWith({ app: 'web' }, { 'inject.istio.io/templates': 'envoy', ...annotations }, spec);

function inject(pod: JsonObject, revision = '') {
  const config = configFor(revision);
  const result = reviewPod({
    pod,
    namespace: 'team',
    namespaceLabels: revision ? { 'istio.io/rev': revision } : { 'istio-injection': 'enabled' },
    config,
    validateBootstrap: bootstrapProblems,
  });
  if (result.outcome !== 'injected') return { result, pod: undefined };
  const injected = jsonpatch.applyPatch(structuredClone(pod), result.patch as jsonpatch.Operation[], true, false).newDocument as JsonObject;
  return { result, pod: injected };
}

const annotations = (pod: JsonObject) => (pod.metadata as { annotations: Record<string, string> }).annotations;
const bootstrapOf = (pod: JsonObject) => JSON.parse(annotations(pod)[BOOTSTRAP_ANNOTATION] as string) as JsonObject;

beforeAll(() => {
  loadBootstrapValidator();
}, 30_000);

describe('the envoy template', () => {
  it('runs Envoy from the bootstrap the pod carries, projected where Envoy reads it', () => {
    const { pod } = inject(envoyPod());
    if (!pod) throw new Error('not injected');
    const proxy = container(pod, 'istio-proxy');
    expect(proxy.command).toEqual(['/usr/local/bin/envoy']);
    expect((proxy.args as string[]).slice(0, 2)).toEqual(['-c', '/etc/istio/proxy/envoy-rev0.json']);
    expect(proxy.volumeMounts).toContainEqual({ mountPath: '/etc/istio/proxy', name: 'istio-envoy-bootstrap', readOnly: true });
    expect((pod.spec as { volumes: JsonObject[] }).volumes).toContainEqual({
      name: 'istio-envoy-bootstrap',
      downwardAPI: { items: [{ path: 'envoy-rev0.json', fieldRef: { fieldPath: `metadata.annotations['${BOOTSTRAP_ANNOTATION}']` } }] },
    });
    expect(loadBootstrapValidator().validate(bootstrapOf(pod))).toEqual([]);
  });

  it.each([
    ['', 'istiod.istio-system.svc'],
    ['canary', 'istiod-canary.istio-system.svc'],
  ])('revision %j points xds-grpc at %s:15012', (revision, host) => {
    const { pod } = inject(envoyPod(), revision);
    if (!pod) throw new Error('not injected');
    const clusters = ((bootstrapOf(pod).static_resources as JsonObject).clusters as JsonObject[]);
    const xds = clusters.find((c) => c.name === 'xds-grpc') as JsonObject;
    expect(JSON.stringify(xds.load_assignment)).toContain(`{"address":"${host}","port_value":15012}`);
  });

  it('leaves application probes alone and has Envoy scraped on 15090, since no agent runs', () => {
    const { pod } = inject(envoyPod({}, { containers: [{ name: 'web', image: 'w', readinessProbe: { httpGet: { port: 8080 } } }] }));
    if (!pod) throw new Error('not injected');
    expect(container(pod, 'web').readinessProbe).toEqual({ httpGet: { port: 8080 } });
    expect(annotations(pod)['prometheus.io/port']).toBe('15090');
  });

  it('refuses a pod whose settings would give Envoy a bootstrap it cannot load, naming the field', () => {
    const { result } = inject(envoyPod({ 'proxy.istio.io/config': 'tracing: {zipkin: {address: "zipkin:99999"}}' }));
    expect(result.outcome).toBe('refused');
    if (result.outcome === 'refused') {
      expect(result.error.message).toMatch(/invalid Envoy bootstrap: static_resources\.clusters\[\d\].*port_value: 99999 is out of range/);
    }
  });
});
