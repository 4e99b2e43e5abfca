// AdmissionReviews as the API server sends them, and the answers read back: the patch decoded from base64 and
// applied to the pod it was computed against.

import jsonpatch from 'fast-json-patch';
import type { AdmissionReviewAnswer } from '../../src/admission/encode.js';
import type { JsonObject } from '../../src/core/json.js';

export interface ReviewOptions {
  apiVersion?: string;
  uid?: string;
  namespace?: string;
  operation?: string;
  kind?: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
}

const POD_KIND = { group: '', version: 'v1', kind: 'Pod' };
const POD_RESOURCE = { group: '', version: 'v1', resource: 'pods' };

export function admissionReview(object: JsonObject | null, options: ReviewOptions = {}): JsonObject {
  return {
    apiVersion: options.apiVersion ?? 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: options.uid ?? 'e911857d-c318-11e8-bbad-025000000001',
      kind: options.kind ?? POD_KIND,
      resource: options.resource ?? POD_RESOURCE,
      requestKind: options.kind ?? POD_KIND,
      requestResource: options.resource ?? POD_RESOURCE,
      namespace: options.namespace ?? 'team',
      operation: options.operation ?? 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
      object,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  };
}

export function patchOf(answer: AdmissionReviewAnswer): jsonpatch.Operation[] {
  const { patch, patchType } = answer.response;
  if (patch === undefined) throw new Error('the answer has no patch');
  if (patchType !== 'JSONPatch') throw new Error(`patchType is ${patchType}`);
  return JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as jsonpatch.Operation[];
}

/** The pod after the answer's patch; validate=true checks every operation against the pod before applying it. */
export function applyAnswer(pod: JsonObject, answer: AdmissionReviewAnswer): JsonObject {
  return jsonpatch.applyPatch(structuredClone(pod), patchOf(answer), true, false).newDocument as JsonObject;
}

/** Names of init containers and containers, in order. */
export function containerNames(pod: JsonObject): string[] {
  const spec = pod.spec as { initContainers?: { name: string }[]; containers?: { name: string }[] };
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])].map((c) => c.name);
}
