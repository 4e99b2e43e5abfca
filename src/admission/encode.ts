// The AdmissionReview answer, in the apiVersion the request came in (v1 and v1beta1 share the response shape)
// and with its uid, which is how the API server matches it. The request is not echoed back.

import type { Operation } from '../core/patch.js';
import type { AdmissionApiVersion, ReviewIdentity } from './decode.js';

export interface AdmissionVerdict {
  allowed: boolean;
  /** Sent only when it has operations: a skip, or a pod already injected, is a plain allowed:true. */
  patch?: readonly Operation[];
  /** Shown to the user by kubectl; sent only when there are some. */
  warnings?: readonly string[];
  /** Why a pod is denied. */
  status?: { code: number; message: string };
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** Base64 of the JSON Patch (the field is []byte in the API). */
  patch?: string;
  warnings?: string[];
  status?: { code: number; message: string };
}

export interface AdmissionReviewAnswer {
  apiVersion: AdmissionApiVersion;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/**
 * The answer as JSON text, ready to send. Written by hand around the base64 patch, which is most of its length:
 * JSON.stringify of the whole answer would copy and scan it once more (about 5 µs a review for a typical pod). The
 * fields are those of AdmissionReviewAnswer, in its order; every value that is not ours goes through JSON.stringify.
 */
export function encodeAdmissionReview(
  review: Pick<ReviewIdentity, 'apiVersion' | 'uid'>,
  verdict: AdmissionVerdict,
): string {
  let response = `{"uid":${JSON.stringify(review.uid)},"allowed":${verdict.allowed ? 'true' : 'false'}`;
  if (verdict.patch !== undefined && verdict.patch.length > 0) {
    response += `,"patchType":"JSONPatch","patch":"${Buffer.from(JSON.stringify(verdict.patch)).toString('base64')}"`;
  }
  if (verdict.warnings !== undefined && verdict.warnings.length > 0) response += `,"warnings":${JSON.stringify(verdict.warnings)}`;
  if (verdict.status !== undefined) response += `,"status":${JSON.stringify(verdict.status)}`;
  return `{"apiVersion":${JSON.stringify(review.apiVersion)},"kind":"AdmissionReview","response":${response}}}`;
}
