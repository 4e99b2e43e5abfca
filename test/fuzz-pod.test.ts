// Property-based fuzzing of the core: any pod, well formed or hostile, under several configurations. The core
// answers every pod with an outcome (never an exception), leaves the pod it was given untouched, and its patch
// applies to the pod, keeps a schema-valid pod valid, and is final: injecting the result again changes nothing.

import jsonpatch from 'fast-json-patch';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type InjectorConfig, resolveConfig } from '../src/config/schema.js';
import type { JsonObject } from '../src/core/json.js';
import { type PodReview, reviewPod } from '../src/core/review-pod.js';
import { fuzzPod, podSchemaProblems, runs } from './helpers/fuzz.js';
import { podWith, review as reviewPodAndApply } from './helpers/pods.js';

const CONFIGS: Record<string, InjectorConfig> = {
  default: resolveConfig(null),
  'native sidecars': resolveConfig({ nativeSidecars: true }),
  'Istio CNI': resolveConfig({ cni: { enabled: true } }),
  'revision canary': resolveConfig({ revision: 'canary' }),
};

const NAMESPACE_LABELS: (Record<string, string> | undefined)[] = [
  { 'istio-injection': 'enabled' },
  { 'istio.io/rev': 'canary' },
  {},
  undefined,
];

const setting = fc.record({
  config: fc.constantFrom(...Object.keys(CONFIGS)),
  namespaceLabels: fc.constantFrom(...NAMESPACE_LABELS),
});

type Setting = { config: string; namespaceLabels: Record<string, string> | undefined };

function review(pod: JsonObject, { config, namespaceLabels }: Setting): PodReview {
  return reviewPod({ pod, namespace: 'team', namespaceLabels, config: CONFIGS[config] as InjectorConfig });
}

/** The pod after the review's patch; validate=true checks each operation against the document as it applies it. */
function applied(pod: JsonObject, result: PodReview & { outcome: 'injected' }): JsonObject {
  return jsonpatch.applyPatch(structuredClone(pod), result.patch as jsonpatch.Operation[], true, false).newDocument as JsonObject;
}

const namesIn = (list: unknown): unknown[] => (Array.isArray(list) ? list.map((item) => (item as JsonObject | null)?.name) : []);
const ownVolumes = (pod: JsonObject) => namesIn((pod.spec as JsonObject).volumes);
/** The volume names the status annotation records as injected. */
function injectedVolumes(pod: JsonObject): unknown[] {
  const status = ((pod.metadata as JsonObject).annotations as Record<string, string>)['sidecar.istio.io/status'] as string;
  const volumes = (JSON.parse(status) as { volumes: unknown }).volumes;
  return Array.isArray(volumes) ? volumes : [];
}

describe('the core under fuzzing', () => {
  it('answers every pod with an outcome, leaves it untouched, and its patch applies cleanly', () => {
    fc.assert(
      fc.property(fuzzPod, setting, (pod, at) => {
        const received = JSON.stringify(pod);
        const result = review(pod, at);
        expect(['injected', 'skipped', 'refused']).toContain(result.outcome);
        expect(JSON.stringify(pod)).toBe(received);
        if (result.outcome === 'injected') applied(pod, result);
      }),
      { numRuns: runs(400) },
    );
  });

  it('keeps a pod that passes the Kubernetes Pod schema valid after injection', () => {
    fc.assert(
      fc.property(fuzzPod, setting, (pod, at) => {
        const result = review(pod, at);
        if (result.outcome !== 'injected' || podSchemaProblems(pod) !== undefined) return;
        expect(podSchemaProblems(applied(pod, result))).toBeUndefined();
      }),
      { numRuns: runs(300) },
    );
  });

  // Two kinds of pod are left out, both as istiod treats them. A pod that brings its own volume under the name of
  // one injection adds: the two are merged, and a second injection, which removes the volumes the status annotation
  // names, cannot tell the pod's part from the injected one. A pod whose only container is its own istio-proxy:
  // with native sidecars it comes out with no containers (Istio's only-proxy-container case), which the API
  // server rejects, so it is never injected again.
  it('changes nothing when it injects a pod it has injected already', () => {
    fc.assert(
      fc.property(fuzzPod, setting, (pod, at) => {
        const first = review(pod, at);
        if (first.outcome !== 'injected') return;
        const once = applied(pod, first);
        fc.pre(!ownVolumes(pod).some((name) => injectedVolumes(once).includes(name)));
        fc.pre(namesIn((once.spec as JsonObject).containers).length > 0);
        const second = review(once, at);
        expect(second.outcome).toBe('injected');
        const twice = second.outcome === 'injected' ? applied(once, second) : once;
        expect(JSON.stringify(twice)).toBe(JSON.stringify(once));
      }),
      { numRuns: runs(300) },
    );
  });
});

// Each found by the properties above, kept as a plain case.
describe('pods the fuzzer broke the core with', () => {
  const optedIn = { 'istio-injection': 'enabled' };
  const deeplyNested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

  it('refuses a userVolume annotation nested ten thousand levels deep instead of overflowing the stack', () => {
    const pod = podWith({}, { 'sidecar.istio.io/userVolume': `{"v":{"emptyDir":{},"x":${deeplyNested(10_000)}}}` });
    const { review: result } = reviewPodAndApply(pod, CONFIGS.default as InjectorConfig, optedIn);
    expect(result.outcome).toBe('refused');
    expect(result.outcome === 'refused' && result.error.message).toContain('nested deeper than 64 levels');
  });

  it('ignores an overrides record nested ten thousand levels deep, as it ignores any damaged record', () => {
    const pod = podWith({}, {
      'sidecar.istio.io/status': JSON.stringify({ containers: ['istio-proxy'], initContainers: ['istio-init'] }),
      'proxy.istio.io/overrides': `{"containers":[{"name":"istio-proxy","image":"custom","args":${deeplyNested(10_000)}}]}`,
    });
    (pod.spec as { containers: JsonObject[] }).containers.push({ name: 'istio-proxy', image: 'custom' });
    expect(reviewPodAndApply(pod, CONFIGS.default as InjectorConfig, optedIn).review.outcome).toBe('injected');
  });

  it('injects again a pod with its own istio-validation init container, which no template renders', () => {
    const pod = podWith({}, {}, {
      containers: [{ name: 'istio-proxy', image: 'custom' }, { name: 'app', image: 'app' }],
      initContainers: [{ name: 'istio-validation', image: 'custom' }],
    });
    const once = reviewPodAndApply(pod, CONFIGS.default as InjectorConfig, optedIn).pod;
    const again = reviewPodAndApply(once, CONFIGS.default as InjectorConfig, optedIn);
    expect(again.review.outcome).toBe('injected');
    expect(again.pod).toEqual(once);
  });

  it("keeps the agent's probe record on re-injection when the user's istio-proxy sets ISTIO_KUBE_APP_PROBERS to something unreadable", () => {
    const pod = podWith({}, {}, {
      containers: [
        { name: 'istio-proxy', image: 'custom', env: [{ name: 'ISTIO_KUBE_APP_PROBERS', value: 'not json' }] },
        { name: 'app', image: 'app', readinessProbe: { httpGet: { path: '/ready', port: 8080 } } },
      ],
    });
    const once = reviewPodAndApply(pod, CONFIGS.default as InjectorConfig, optedIn).pod;
    expect(reviewPodAndApply(once, CONFIGS.default as InjectorConfig, optedIn).pod).toEqual(once);
  });

  it('injects a grpc-simple pod again without deleting or rewriting its application container', () => {
    const app = {
      name: 'app',
      image: 'app',
      env: [{ name: 'X' }, { name: 'X', value: 'second' }],
      livenessProbe: { httpGet: null, grpc: { port: 1 }, periodSeconds: null },
    };
    const pod = podWith({}, { 'inject.istio.io/templates': 'grpc-simple' }, { containers: [app] });
    const once = reviewPodAndApply(pod, CONFIGS.default as InjectorConfig, optedIn).pod;
    const again = reviewPodAndApply(once, CONFIGS.default as InjectorConfig, optedIn);
    expect(again.review.outcome === 'injected' && again.review.patch).toEqual([]);
    expect((again.pod.spec as { containers: JsonObject[] }).containers.map((c) => c.name)).toEqual(['app']);
  });

  it('replaces an object holding a "__proto__" key whole, so no operation names the key and every tool applies the patch', () => {
    // Two containers named istio-init: the injected one replaces the init container, whose "__proto__" goes.
    const pod = podWith({}, {}, {
      containers: [{ name: 'istio-init', image: 'custom' }, { name: 'app', image: 'app' }],
      initContainers: [{ name: 'istio-init', securityContext: JSON.parse('{"__proto__":""}') as JsonObject }],
    });
    const { review: result } = reviewPodAndApply(pod, CONFIGS.default as InjectorConfig, optedIn);
    expect(result.outcome).toBe('injected');
    const paths = result.outcome === 'injected' ? result.patch.map((op) => op.path) : [];
    expect(paths.filter((path) => path.split('/').includes('__proto__'))).toEqual([]);
  });

  it('injects a pod whose own istio-proxy has a null env entry instead of failing on it', () => {
    const pod = podWith({}, {}, {
      containers: [{ name: 'istio-proxy', image: 'custom', env: [null] }, { name: 'app', image: 'app', readinessProbe: { httpGet: { path: '/ready', port: 8080 } } }],
    });
    const { review: result } = reviewPodAndApply(pod, CONFIGS.default as InjectorConfig, optedIn);
    expect(result.outcome).toBe('injected');
  });

  it("keeps the application's own scrape settings in the proxy's env when it injects a merged pod again", () => {
    const pod = podWith({}, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090' });
    const once = reviewPodAndApply(pod, CONFIGS.default as InjectorConfig, optedIn).pod;
    const again = reviewPodAndApply(once, CONFIGS.default as InjectorConfig, optedIn);
    expect(again.review.outcome === 'injected' && again.review.patch).toEqual([]);
  });
});
