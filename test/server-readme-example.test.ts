// The README's curl example, as a test: the sample AdmissionReviews in examples/ are answered by a server with
// the embedded default config (what `npm start` runs) with a patch that, applied to the sample pod, adds
// istio-init and istio-proxy.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdmissionReviewAnswer } from '../src/admission/encode.js';
import type { JsonObject } from '../src/core/json.js';
import { applyAnswer, containerNames } from './helpers/admission.js';
import { JSON_CONTENT_TYPE, json, send, startServer, type TestServer } from './helpers/https.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

describe.each(['v1', 'v1beta1'])('examples/admission-review-%s.json', (version) => {
  const text = readFileSync(new URL(`../examples/admission-review-${version}.json`, import.meta.url), 'utf8');
  const review = JSON.parse(text) as { request: { uid: string; object: JsonObject } };

  it('gets a patch that adds istio-init and istio-proxy to the sample pod', async () => {
    const answer = await send(server, '/inject', { method: 'POST', headers: JSON_CONTENT_TYPE, body: text });
    expect(answer.status).toBe(200);
    const reply = json<AdmissionReviewAnswer>(answer);
    expect(reply.apiVersion).toBe(`admission.k8s.io/${version}`);
    expect(reply.response.uid).toBe(review.request.uid);
    const injected = applyAnswer(review.request.object, reply);
    expect(containerNames(injected)).toEqual(['istio-init', 'istio-proxy', 'hello']);
  });
});
