// Fifty reviews at once, half of them v1beta1, each on its own TLS connection: every answer carries its own
// request's uid and version, and every patch applies to the pod that was sent with it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdmissionReviewAnswer } from '../src/admission/encode.js';
import { admissionReview, applyAnswer, containerNames } from './helpers/admission.js';
import { expectHealthy, json, postJson, startServer, type TestServer } from './helpers/https.js';
import { podWith } from './helpers/pods.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

describe('50 concurrent reviews', () => {
  it('are each answered for their own request', async () => {
    const requests = Array.from({ length: 50 }, (_, i) => {
      const pod = podWith({ 'sidecar.istio.io/inject': 'true', app: `app-${i}` });
      const apiVersion = i % 2 === 0 ? 'admission.k8s.io/v1' : 'admission.k8s.io/v1beta1';
      return { pod, apiVersion, uid: `uid-${i}`, answer: postJson(server, admissionReview(pod, { apiVersion, uid: `uid-${i}` })) };
    });
    for (const { pod, apiVersion, uid, answer } of requests) {
      const reply = await answer;
      expect(reply.status).toBe(200);
      const review = json<AdmissionReviewAnswer>(reply);
      expect(review.apiVersion).toBe(apiVersion);
      expect(review.response.uid).toBe(uid);
      const injected = applyAnswer(pod, review);
      expect(containerNames(injected)).toEqual(expect.arrayContaining(['istio-init', 'istio-proxy']));
      expect((injected.metadata as { labels: Record<string, string> }).labels.app).toBe((pod.metadata as { labels: Record<string, string> }).labels.app);
    }
    expect(server.logs.filter((line) => line.msg === 'review')).toHaveLength(50);
    await expectHealthy(server);
  });
});
