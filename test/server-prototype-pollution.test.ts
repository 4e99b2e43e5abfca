// Keys that could reach an object's prototype never do: a body holding "__proto__" (however it is spelled in
// JSON) or "constructor": {"prototype": …} anywhere is refused as bad-json before anything reads it. No valid
// Pod has such keys (label and annotation keys must start with a letter or digit), so refusing costs nothing
// legitimate, and the patch is always computed against the exact object received. The server runs in this
// process, so a pollution would show on this process's Object.prototype.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AdmissionReviewAnswer } from '../src/admission/encode.js';
import { OUTCOMES } from '../src/admission/outcomes.js';
import { admissionReview } from './helpers/admission.js';
import { expectHealthy, JSON_CONTENT_TYPE, json, send, startServer, type TestServer } from './helpers/https.js';
import { podWith } from './helpers/pods.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterEach(async () => {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty('polluted');
  await expectHealthy(server);
});
afterAll(() => server.close());

/** The example review as JSON text with `key: value` spliced into the pod's labels. */
function reviewWithLabel(rawKey: string, rawValue: string): string {
  const text = JSON.stringify(admissionReview(podWith({ 'sidecar.istio.io/inject': 'true' })));
  return text.replace('"labels":{', `"labels":{${rawKey}:${rawValue},`);
}

const post = (body: string) => send(server, '/inject', { method: 'POST', headers: JSON_CONTENT_TYPE, body });

describe('a body with a prototype key', () => {
  it.each([
    ['__proto__ in the pod labels', reviewWithLabel('"__proto__"', '{"polluted":"yes"}')],
    ['__proto__ spelled with a JSON escape', reviewWithLabel('"\\u005f_proto__"', '{"polluted":"yes"}')],
    ['__proto__ at the top level', `{"__proto__":{"polluted":"yes"},${JSON.stringify(admissionReview(podWith())).slice(1)}`],
    ['constructor.prototype in the pod labels', reviewWithLabel('"constructor"', '{"prototype":{"polluted":"yes"}}')],
  ])('is refused as bad-json (%s)', async (_name, body) => {
    const answer = await post(body);
    expect(answer.status).toBe(400);
    expect(json(answer)).toEqual({ error: 'bad-json', message: OUTCOMES['bad-json'].message });
  });
});

describe('a key that only looks dangerous', () => {
  it('"constructor" with a plain string value is data, and the pod is reviewed as usual', async () => {
    const answer = await post(reviewWithLabel('"constructor"', '"tools"'));
    expect(answer.status).toBe(200);
    expect(json<AdmissionReviewAnswer>(answer).response).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
  });
});
