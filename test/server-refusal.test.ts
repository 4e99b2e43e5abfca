// An injection error is a denial, not an HTTP failure: an opted-in pod with an invalid annotation is answered
// allowed:false, with a status message that names the annotation and its value, as istiod does.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdmissionReviewAnswer } from '../src/admission/encode.js';
import { admissionReview } from './helpers/admission.js';
import { expectHealthy, json, postJson, startServer, type TestServer } from './helpers/https.js';
import { podWith } from './helpers/pods.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

describe('a pod with an invalid annotation', () => {
  const annotation = 'traffic.sidecar.istio.io/includeInboundPorts';
  const pod = podWith({ 'sidecar.istio.io/inject': 'true' }, { [annotation]: '80,http' });

  it('is denied with status 400 and a message naming the annotation and the value', async () => {
    const answer = await postJson(server, admissionReview(pod, { uid: 'refused' }));
    expect(answer.status).toBe(200);
    const { response } = json<AdmissionReviewAnswer>(answer);
    expect(response.uid).toBe('refused');
    expect(response.allowed).toBe(false);
    expect(response.patch).toBeUndefined();
    expect(response.status?.code).toBe(400);
    expect(response.status?.message).toContain(annotation);
    expect(response.status?.message).toContain('80,http');
  });

  it('is logged as refused with the reason, and the server goes on answering', async () => {
    await postJson(server, admissionReview(pod, { uid: 'refused-logged' }));
    const line = server.logs.find((l) => l.uid === 'refused-logged');
    expect(line).toMatchObject({ msg: 'review', decision: 'refused', namespace: 'team', pod: 'app' });
    expect(line?.error).toContain(annotation);
    await expectHealthy(server);
  });
});

describe('a pod whose sidecar.istio.io/inject label is not "true" or "false"', () => {
  it('gets the core warning back in the answer', async () => {
    const pod = podWith({ 'istio.io/rev': 'default', 'sidecar.istio.io/inject': 'yes' });
    const { response } = json<AdmissionReviewAnswer>(await postJson(server, admissionReview(pod, { uid: 'warned' })));
    expect(response.allowed).toBe(true);
    expect(response.warnings).toEqual([expect.stringContaining('sidecar.istio.io/inject')]);
  });
});
