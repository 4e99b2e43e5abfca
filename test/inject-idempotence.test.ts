// Injecting an injected pod gives the same pod again: no duplicate containers or volumes, and no patch at all.

import { describe, expect, it } from 'vitest';
import { reviewPod } from '../src/core/review-pod.js';
import { configFor, container, names, podWith, review } from './helpers/pods.js';

const enabled = { 'istio-injection': 'enabled' };

describe('re-injection', () => {
  it.each([
    ['native', configFor('')],
    ['classic', configFor('', { nativeSidecars: false })],
    ['canary', configFor('canary')],
  ])('a pod injected by the %s template gets an empty patch the second time', (_name, config) => {
    const labels: Record<string, string> = config.revision ? { 'istio.io/rev': config.revision } : {};
    const once = review(podWith(labels), config, config.revision ? {} : enabled).pod;
    const again = reviewPod({ pod: once, namespace: 'team', namespaceLabels: config.revision ? {} : enabled, config });
    expect(again.outcome).toBe('injected');
    if (again.outcome === 'injected') expect(again.patch).toEqual([]);
  });

  it('a pod injected by another revision is re-injected in place, not duplicated', () => {
    const once = review(podWith({ 'istio.io/rev': 'canary' }), configFor('canary'), {}).pod;
    const twice = review(once, configFor(''), enabled).pod;
    const spec = twice.spec as { initContainers: unknown; containers: unknown; volumes: unknown };
    expect(names(spec.initContainers)).toEqual(['istio-init', 'istio-proxy']);
    expect(names(spec.containers)).toEqual(['app']);
    expect(new Set(names(spec.volumes)).size).toBe(names(spec.volumes).length);
    expect(JSON.stringify(spec)).toContain('istiod.istio-system.svc:15012');
    expect(JSON.stringify(spec)).not.toContain('istiod-canary');
  });

  it('switching from classic to native moves istio-proxy into the init containers', () => {
    const classic = review(podWith(), configFor('', { nativeSidecars: false }), enabled).pod;
    const native = review(classic, configFor(''), enabled).pod;
    const spec = native.spec as { initContainers: unknown; containers: unknown };
    expect(names(spec.initContainers)).toEqual(['istio-init', 'istio-proxy']);
    expect(names(spec.containers)).toEqual(['app']);
  });
});

describe('re-injection of a pod whose probes were rewritten', () => {
  it('keeps what the agent knew of the original probes', () => {
    const probed = podWith({}, {}, {
      containers: [{ name: 'app', image: 'a', readinessProbe: { httpGet: { path: '/ready', port: 8080 } } }],
    });
    const once = review(probed, configFor(''), enabled).pod;
    const twice = review(once, configFor('', { proxy: { logLevel: 'debug' } }), enabled).pod;
    const env = (pod: typeof once) =>
      (container(pod, 'istio-proxy').env as { name: string; value?: string }[]).find((e) => e.name === 'ISTIO_KUBE_APP_PROBERS')?.value;
    expect(env(once)).toBe('{"/app-health/app/readyz":{"httpGet":{"path":"/ready","port":8080}}}');
    expect(env(twice)).toBe(env(once));
  });
});
