// Where the injected parts go, and that the patch touches nothing else: Istio's ordering (istio-injector.md §6.3)
// for native and classic sidecars, the user's init containers, volumes and pull secrets kept as they were.

import { describe, expect, it } from 'vitest';
import { configFor, container, names, podWith, review, statusOf } from './helpers/pods.js';

const enabled = { 'istio-injection': 'enabled' };

describe('placement of injected containers and volumes', () => {
  const withInit = podWith({}, {}, {
    initContainers: [{ name: 'migrate', image: 'example/migrate:1' }],
    volumes: [{ name: 'data', emptyDir: {} }],
    imagePullSecrets: [{ name: 'mine' }],
  });

  it('native sidecars: istio-init, then istio-proxy with restartPolicy Always, then the user init containers', () => {
    const { pod } = review(withInit, configFor(''), enabled);
    expect(names((pod.spec as { initContainers: unknown }).initContainers)).toEqual(['istio-init', 'istio-proxy', 'migrate']);
    expect(names((pod.spec as { containers: unknown }).containers)).toEqual(['app']);
    expect(container(pod, 'istio-proxy').restartPolicy).toBe('Always');
    expect(statusOf(pod)).toMatchObject({ initContainers: ['istio-init', 'istio-proxy'], containers: null });
  });

  it('classic sidecars: the user init containers, then istio-init; istio-proxy last among the containers', () => {
    const { pod } = review(withInit, configFor('', { nativeSidecars: false }), enabled);
    expect(names((pod.spec as { initContainers: unknown }).initContainers)).toEqual(['migrate', 'istio-init']);
    expect(names((pod.spec as { containers: unknown }).containers)).toEqual(['app', 'istio-proxy']);
    expect(container(pod, 'istio-proxy').restartPolicy).toBeUndefined();
    expect(statusOf(pod)).toMatchObject({ initContainers: ['istio-init'], containers: ['istio-proxy'] });
  });

  it('classic sidecars holding the application: istio-proxy first, waiting in postStart', () => {
    const config = configFor('', { nativeSidecars: false, proxy: { holdApplicationUntilProxyStarts: true } });
    const { pod } = review(withInit, config, enabled);
    expect(names((pod.spec as { containers: unknown }).containers)).toEqual(['istio-proxy', 'app']);
    expect(container(pod, 'istio-proxy').lifecycle).toEqual({ postStart: { exec: { command: ['pilot-agent', 'wait'] } } });
  });

  it('the annotation sidecar.istio.io/nativeSidecar overrides the config either way', () => {
    const optOut = podWith({}, { 'sidecar.istio.io/nativeSidecar': 'false' });
    expect(names((review(optOut, configFor(''), enabled).pod.spec as { containers: unknown }).containers)).toContain('istio-proxy');
    const optIn = podWith({}, { 'sidecar.istio.io/nativeSidecar': 'true' });
    const pod = review(optIn, configFor('', { nativeSidecars: false }), enabled).pod;
    expect(names((pod.spec as { initContainers: unknown }).initContainers)).toContain('istio-proxy');
  });

  it('injected volumes and pull secrets come before the user ones, which are kept unchanged', () => {
    const config = configFor('', { images: { pullSecrets: ['mesh-registry', 'mine'] } });
    const { pod } = review(withInit, config, enabled);
    const spec = pod.spec as { volumes: unknown[]; imagePullSecrets: unknown[] };
    expect(names(spec.volumes).slice(-1)).toEqual(['data']);
    expect(names(spec.volumes)[0]).toBe('workload-socket');
    expect(spec.imagePullSecrets).toEqual([{ name: 'mesh-registry' }, { name: 'mine' }]);
  });

  it('interception mode NONE injects no istio-init', () => {
    const { pod } = review(podWith({}, { 'sidecar.istio.io/interceptionMode': 'NONE' }), configFor(''), enabled);
    expect(names((pod.spec as { initContainers: unknown }).initContainers)).toEqual(['istio-proxy']);
  });

  it('the user containers are not modified by the patch', () => {
    const input = podWith();
    const { pod } = review(input, configFor(''), enabled);
    expect((pod.spec as { containers: unknown[] }).containers[0]).toEqual((input.spec as { containers: unknown[] }).containers[0]);
  });
});
