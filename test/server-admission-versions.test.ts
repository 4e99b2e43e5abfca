// A Pod CREATE over HTTPS in each AdmissionReview version: the answer comes back in the request's version with its
// uid, and its patch, applied to the pod that was sent, yields istio-init and istio-proxy.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdmissionReviewAnswer } from '../src/admission/encode.js';
import { admissionReview, applyAnswer, containerNames } from './helpers/admission.js';
import { json, postJson, startServer, type TestServer } from './helpers/https.js';
import { podWith, statusOf } from './helpers/pods.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

describe.each(['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'])('an %s review of an opted-in pod', (apiVersion) => {
  const pod = podWith({ 'sidecar.istio.io/inject': 'true' });
  const uid = `uid-${apiVersion}`;

  it('is answered in the same version, with the same uid, allowed with a JSONPatch', async () => {
    const answer = await postJson(server, admissionReview(pod, { apiVersion, uid }));
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const review = json<AdmissionReviewAnswer>(answer);
    expect(review.apiVersion).toBe(apiVersion);
    expect(review.kind).toBe('AdmissionReview');
    expect(review.response.uid).toBe(uid);
    expect(review.response.allowed).toBe(true);
    expect(review.response.patchType).toBe('JSONPatch');
    expect(review).not.toHaveProperty('request');
  });

  it('carries a patch that applies to the pod sent and adds istio-init and istio-proxy', async () => {
    const review = json<AdmissionReviewAnswer>(await postJson(server, admissionReview(pod, { apiVersion, uid })));
    const injected = applyAnswer(pod, review);
    expect(containerNames(injected)).toEqual(expect.arrayContaining(['istio-init', 'istio-proxy', 'app']));
    expect(statusOf(injected).revision).toBe('default');
  });
});

describe('the paths the API server and istiod configurations use', () => {
  const pod = podWith({ 'sidecar.istio.io/inject': 'true' });
  // The API server appends ?timeout=<N>s to the configured path; istiod also serves /inject/<segments>.
  it.each(['/inject?timeout=10s', '/inject/', '/inject/cluster/cluster-1/net/network-1?timeout=30s'])(
    '%s is answered like /inject',
    async (path) => {
      const answer = await postJson(server, admissionReview(pod, { uid: path }), path);
      expect(answer.status).toBe(200);
      expect(json<AdmissionReviewAnswer>(answer).response).toMatchObject({ uid: path, allowed: true, patchType: 'JSONPatch' });
    },
  );
});
