// The answer is written by hand around the base64 patch (encode.ts); it must be exactly the JSON that
// JSON.stringify of the answer object would give, whatever the request's uid and the verdict hold.

import { describe, expect, it } from 'vitest';
import { type AdmissionReviewAnswer, type AdmissionVerdict, encodeAdmissionReview } from '../src/admission/encode.js';
import type { Operation } from '../src/core/patch.js';

const PATCH: Operation[] = [
  { op: 'add', path: '/metadata/labels/security.istio.io~1tlsMode', value: 'istio' },
  { op: 'add', path: '/spec/initContainers', value: [{ name: 'istio-init', args: ['-p', '15001', 'ünïcödé'] }] },
  { op: 'remove', path: '/spec/containers/0/livenessProbe/httpGet/scheme' },
];

/** The answer as the object form spelled it before it was written by hand. */
function objectForm(apiVersion: AdmissionReviewAnswer['apiVersion'], uid: string, verdict: AdmissionVerdict): AdmissionReviewAnswer {
  const response: AdmissionReviewAnswer['response'] = { uid, allowed: verdict.allowed };
  if (verdict.patch?.length) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(verdict.patch)).toString('base64');
  }
  if (verdict.warnings?.length) response.warnings = [...verdict.warnings];
  if (verdict.status) response.status = verdict.status;
  return { apiVersion, kind: 'AdmissionReview', response };
}

const UIDS = ['705ab4f5-6393-11e8-b7cc-42010a800002', 'with "quotes" and \\ backslash', 'line\nbreak\u2028and\u0000nul', '😀 \ud800 lone surrogate', ''];

const VERDICTS: Record<string, AdmissionVerdict> = {
  'an injection': { allowed: true, patch: PATCH },
  'an injection with warnings': { allowed: true, patch: PATCH, warnings: ['annotation "x" is deprecated', 'quote " and \\'] },
  'a skip': { allowed: true },
  'a skip with an empty patch and no warnings': { allowed: true, patch: [], warnings: [] },
  'a refusal': { allowed: false, warnings: ['w'], status: { code: 400, message: 'annotation sidecar.istio.io/proxyCPU: "x" is not a quantity' } },
};

describe('encodeAdmissionReview', () => {
  for (const [what, verdict] of Object.entries(VERDICTS)) {
    for (const apiVersion of ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const) {
      it(`writes ${what} (${apiVersion}) as exactly the JSON of the answer object, for every kind of uid`, () => {
        for (const uid of UIDS) {
          const text = encodeAdmissionReview({ apiVersion, uid }, verdict);
          expect(text).toBe(JSON.stringify(objectForm(apiVersion, uid, verdict)));
          expect((JSON.parse(text) as AdmissionReviewAnswer).response.uid).toBe(uid);
        }
      });
    }
  }

  it('carries the patch as base64 of its JSON, which decodes back to the same operations', () => {
    const text = encodeAdmissionReview({ apiVersion: 'admission.k8s.io/v1', uid: 'u' }, { allowed: true, patch: PATCH });
    const { patch } = (JSON.parse(text) as AdmissionReviewAnswer).response;
    expect(JSON.parse(Buffer.from(patch as string, 'base64').toString('utf8'))).toEqual(PATCH);
  });
});
