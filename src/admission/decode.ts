// From the parsed request body to what the server must review, or the named reason it cannot.
//
// Fastify has already parsed the JSON (once; nothing here parses again). We read only the fields we answer by and
// hand the pod on untouched: the core patches the exact object received.

import { isObject, type JsonObject } from '../core/json.js';
import type { Outcome } from './outcomes.js';

export const ADMISSION_API_VERSIONS = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const;
export type AdmissionApiVersion = (typeof ADMISSION_API_VERSIONS)[number];

export type DecodeFailure = Extract<
  Outcome,
  'empty-body' | 'not-admission-review' | 'missing-request' | 'missing-uid' | 'missing-object'
>;

/** What every answerable review carries: the answer goes back in the same apiVersion with the same uid. */
export interface ReviewIdentity {
  apiVersion: AdmissionApiVersion;
  uid: string;
  /** request.namespace; "" for cluster-scoped objects. */
  namespace: string;
}

export type DecodedReview =
  /** A Pod CREATE: the pod goes to the core. */
  | (ReviewIdentity & { kind: 'pod'; pod: JsonObject })
  /** A review we answer without looking at the object. `name` is request.name, for the log. */
  | (ReviewIdentity & { kind: 'ignored'; outcome: Extract<Outcome, 'not-a-pod' | 'not-create'>; name: string })
  /** Not answerable as an AdmissionReview; `uid` when the body got far enough to have one, for the log. */
  | { kind: 'invalid'; outcome: DecodeFailure; uid?: string };

const isAdmissionApiVersion = (value: unknown): value is AdmissionApiVersion =>
  value === ADMISSION_API_VERSIONS[0] || value === ADMISSION_API_VERSIONS[1];

const stringOr = (value: unknown, fallback: string): string => (typeof value === 'string' ? value : fallback);

/**
 * A core/v1 Pod, by both the kind and the resource (no subresource): pods/binding or pods/eviction CREATEs carry
 * other kinds, and a webhook configured too widely must not patch them as pods.
 */
function isPodRequest(request: JsonObject): boolean {
  const kind = request.kind;
  const resource = request.resource;
  return (
    isObject(kind) &&
    kind.kind === 'Pod' &&
    stringOr(kind.group, '') === '' &&
    isObject(resource) &&
    resource.resource === 'pods' &&
    stringOr(resource.group, '') === '' &&
    stringOr(request.subResource, '') === ''
  );
}

/** `body` is what Fastify parsed: undefined when the request had no body. */
export function decodeAdmissionReview(body: unknown): DecodedReview {
  if (body === undefined) return { kind: 'invalid', outcome: 'empty-body' };
  if (!isObject(body) || body.kind !== 'AdmissionReview' || !isAdmissionApiVersion(body.apiVersion)) {
    return { kind: 'invalid', outcome: 'not-admission-review' };
  }
  const request = body.request;
  if (!isObject(request)) return { kind: 'invalid', outcome: 'missing-request' };
  const uid = request.uid;
  if (typeof uid !== 'string' || uid === '') return { kind: 'invalid', outcome: 'missing-uid' };
  const apiVersion = body.apiVersion;
  const namespace = stringOr(request.namespace, '');
  // Kind and operation come before the object: a DELETE legitimately carries no object and must not fail.
  if (!isPodRequest(request)) {
    return { kind: 'ignored', outcome: 'not-a-pod', apiVersion, uid, namespace, name: stringOr(request.name, '') };
  }
  if (request.operation !== 'CREATE') {
    return { kind: 'ignored', outcome: 'not-create', apiVersion, uid, namespace, name: stringOr(request.name, '') };
  }
  const pod = request.object;
  if (!isObject(pod)) return { kind: 'invalid', outcome: 'missing-object', uid };
  return { kind: 'pod', apiVersion, uid, namespace, pod };
}
