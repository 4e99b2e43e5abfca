// The core in-process, without HTTP or TLS: what the server does between parsing the body and writing the answer
// (decode, decide, inject, diff, serialise the patch, base64), on a body already parsed.

import { decodeAdmissionReview } from '../src/admission/decode.js';
import { encodeAdmissionReview } from '../src/admission/encode.js';
import type { InjectorConfig } from '../src/config/schema.js';
import type { JsonObject } from '../src/core/json.js';
import { reviewPod } from '../src/core/review-pod.js';

export interface CoreRate {
  perSecond: number;
  microsPerReview: number;
}

/** One review as the server runs it; returns the answer's length so the work cannot be optimised away. */
export function reviewOnce(body: JsonObject, config: InjectorConfig, namespaceLabels: Record<string, Record<string, string>>): number {
  const decoded = decodeAdmissionReview(body);
  if (decoded.kind !== 'pod') throw new Error(`the benchmark body decodes as ${decoded.kind}`);
  const result = reviewPod({ pod: decoded.pod, namespace: decoded.namespace, namespaceLabels: namespaceLabels[decoded.namespace], config });
  if (result.outcome === 'refused') throw new Error(`the benchmark pod is refused: ${result.error.message}`);
  const patch = result.outcome === 'injected' ? result.patch : undefined;
  return encodeAdmissionReview(decoded, { allowed: true, patch, warnings: result.decision.warnings }).length;
}

/** Reviews per second over at least `minMs`, after a warm-up that lets V8 optimise the path. */
export function measureCore(
  body: JsonObject,
  config: InjectorConfig,
  namespaceLabels: Record<string, Record<string, string>>,
  minMs = 1000,
): CoreRate {
  const warmUpEnd = performance.now() + minMs / 4;
  while (performance.now() < warmUpEnd) reviewOnce(body, config, namespaceLabels);
  let reviews = 0;
  const start = performance.now();
  let elapsed = 0;
  // Checking the clock every few reviews keeps its cost out of the figure for the small pods.
  while (elapsed < minMs) {
    for (let i = 0; i < 10; i++) reviewOnce(body, config, namespaceLabels);
    reviews += 10;
    elapsed = performance.now() - start;
  }
  const microsPerReview = (elapsed * 1000) / reviews;
  return { perSecond: 1e6 / microsPerReview, microsPerReview };
}
