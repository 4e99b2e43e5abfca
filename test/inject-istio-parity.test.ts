// The default sidecar template against Istio's own goldens (read at run time from the reference corpus, never
// copied): for Istio's pod.yaml and hello.yaml, our istio-init, istio-proxy, volumes, labels and annotations must
// equal what istiod produced. Prometheus annotations are the parity issue's; they are left out here.

import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { JsonObject } from '../src/core/json.js';
import { reviewPod } from '../src/core/review-pod.js';
import { configFor, review } from './helpers/pods.js';
import { ISTIO_INJECT_CORPUS } from './helpers/reference.js';

const CORPUS = pathToFileURL(`${ISTIO_INJECT_CORPUS}/`);
const load = (file: string) =>
  parseAllDocuments(readFileSync(new URL(file, CORPUS), 'utf8')).map((d) => d.toJS() as JsonObject);

// The chart values behind Istio's goldens: hub registry.istio.io/testing, tag latest.
const istioTestConfig = (extra: Record<string, unknown> = {}) =>
  configFor('', { images: { hub: 'registry.istio.io/testing', tag: 'latest' }, ...extra });

interface PodLike {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { initContainers?: JsonObject[]; containers: JsonObject[]; volumes?: JsonObject[] };
}

function podTemplate(doc: JsonObject): PodLike {
  return (doc.kind === 'Pod' ? doc : (doc.spec as JsonObject).template) as unknown as PodLike;
}

const withoutPrometheus = (annotations: Record<string, string> = {}) =>
  Object.fromEntries(Object.entries(annotations).filter(([k]) => !k.startsWith('prometheus.io/')));

// Go drops empty values when it re-serialises the user's containers (resources: {} appears, zero fields vanish);
// only the injected parts are compared, so those normalisations do not matter here.
function compare(ours: PodLike, istio: PodLike) {
  const injected = (list: JsonObject[] | undefined) => (list ?? []).filter((c) => String(c.name).startsWith('istio-'));
  expect(injected(ours.spec.initContainers)).toEqual(injected(istio.spec.initContainers));
  expect(injected(ours.spec.containers)).toEqual(injected(istio.spec.containers));
  expect((ours.spec.initContainers ?? []).map((c) => c.name)).toEqual((istio.spec.initContainers ?? []).map((c) => c.name));
  expect(ours.spec.containers.map((c) => c.name)).toEqual(istio.spec.containers.map((c) => c.name));
  expect(ours.spec.volumes).toEqual(istio.spec.volumes);
  expect(ours.metadata.labels).toEqual(istio.metadata.labels);
  expect(withoutPrometheus(ours.metadata.annotations)).toEqual(withoutPrometheus(istio.metadata.annotations));
}

describe("the default template matches Istio's goldens", () => {
  it('pod.yaml: a bare Pod becomes pod.yaml.injected', () => {
    const [input] = load('pod.yaml');
    const [golden] = load('pod.yaml.injected');
    const { pod } = review(input as JsonObject, istioTestConfig(), { 'istio-injection': 'enabled' }, 'default');
    compare(pod as unknown as PodLike, golden as unknown as PodLike);
  });

  it.each([
    ['hello.yaml.injected', {}],
    ['hello-old-version.yaml.injected', { nativeSidecars: false }],
    ['hello-tproxy.yaml.injected', { proxyConfig: { interceptionMode: 'TPROXY' } }],
    ['hello-always.yaml.injected', { images: { hub: 'registry.istio.io/testing', tag: 'latest', pullPolicy: 'Always' } }],
    ['hello.yaml.proxyImageName.injected', { images: { hub: 'registry.istio.io/testing', tag: 'latest', proxy: 'proxyTest' } }],
  ])("hello.yaml's pod template becomes %s", (goldenFile, extra) => {
    const [deployment] = load('hello.yaml');
    const [golden] = load(goldenFile);
    const template = podTemplate(deployment as JsonObject);
    // Manual injection names the Deployment as the workload, as istioctl kube-inject does.
    const pod = { metadata: structuredClone(template.metadata), spec: structuredClone(template.spec) } as JsonObject;
    const config = istioTestConfig(extra);
    const result = reviewPod({
      pod,
      namespace: 'default',
      namespaceLabels: undefined,
      config,
      manual: true,
      workload: { name: 'hello', kind: 'Deployment', apiVersion: 'apps/v1' },
    });
    expect(result.outcome).toBe('injected');
    if (result.outcome !== 'injected') return;
    const injected = jsonpatch.applyPatch(pod, result.patch as jsonpatch.Operation[], true, false).newDocument;
    compare(injected as unknown as PodLike, podTemplate(golden as JsonObject));
  });
});
