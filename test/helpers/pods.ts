// Pods for tests and the one way tests run the core: review, then apply the patch with fast-json-patch, so every
// test that injects also proves its patch applies to the object it was computed against.

import jsonpatch from 'fast-json-patch';
import { type InjectorConfig, resolveConfig } from '../../src/config/schema.js';
import type { JsonObject } from '../../src/core/json.js';
import { type PodReview, reviewPod } from '../../src/core/review-pod.js';

export const configFor = (revision = '', extra: Record<string, unknown> = {}): InjectorConfig =>
  resolveConfig({ revision, ...extra });

export function podWith(
  labels: Record<string, string> = {},
  annotations: Record<string, string> = {},
  spec: JsonObject = {},
): JsonObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'app', namespace: 'team', labels, annotations },
    spec: { containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }], ...spec },
  };
}

export interface Applied {
  review: PodReview;
  /** The pod after the patch; the input itself when skipped or refused. */
  pod: JsonObject;
}

export function review(
  pod: JsonObject,
  config: InjectorConfig,
  namespaceLabels: Record<string, string> | undefined = {},
  namespace = 'team',
): Applied {
  const frozen = structuredClone(pod);
  const result = reviewPod({ pod: frozen, namespace, namespaceLabels, config, explain: true });
  if (result.outcome !== 'injected') return { review: result, pod };
  // validate=true makes fast-json-patch check every operation against the document before applying it.
  const patched = jsonpatch.applyPatch(structuredClone(pod), result.patch as jsonpatch.Operation[], true, false).newDocument;
  return { review: result, pod: patched as JsonObject };
}

export const names = (list: unknown): string[] =>
  Array.isArray(list) ? list.map((c) => (c as { name: string }).name) : [];

export function container(pod: JsonObject, name: string): JsonObject {
  const spec = pod.spec as { containers?: JsonObject[]; initContainers?: JsonObject[] };
  const found = [...(spec.initContainers ?? []), ...(spec.containers ?? [])].find((c) => c.name === name);
  if (!found) throw new Error(`no container ${name}`);
  return found;
}

export function statusOf(pod: JsonObject): { revision: string; initContainers: string[] | null; containers: string[] | null } {
  const annotations = (pod.metadata as { annotations: Record<string, string> }).annotations;
  return JSON.parse(annotations['sidecar.istio.io/status'] as string);
}
