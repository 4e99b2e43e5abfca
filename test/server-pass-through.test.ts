// Reviews that are not a Pod CREATE are allowed untouched, even when the object would otherwise be injected:
// sidecars are added once, when a pod is created, and never to other kinds.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AdmissionReviewAnswer } from '../src/admission/encode.js';
import { admissionReview } from './helpers/admission.js';
import { expectHealthy, json, postJson, startServer, type TestServer } from './helpers/https.js';
import { podWith } from './helpers/pods.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterEach(() => expectHealthy(server));
afterAll(() => server.close());

const optedIn = podWith({ 'sidecar.istio.io/inject': 'true' });

async function expectAllowedUnpatched(body: unknown, uid: string): Promise<void> {
  const answer = await postJson(server, body);
  expect(answer.status).toBe(200);
  expect(json<AdmissionReviewAnswer>(answer).response).toEqual({ uid, allowed: true });
}

describe('a review of something other than a pod', () => {
  it('is allowed unpatched when the kind is a Deployment', async () => {
    const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { template: optedIn } };
    const body = admissionReview(deployment, {
      uid: 'deployment',
      kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
      resource: { group: 'apps', version: 'v1', resource: 'deployments' },
    });
    await expectAllowedUnpatched(body, 'deployment');
  });

  it('is allowed unpatched when the kind says Pod but the resource is not pods', async () => {
    const body = admissionReview(optedIn, { uid: 'pods-lookalike', resource: { group: '', version: 'v1', resource: 'services' } });
    await expectAllowedUnpatched(body, 'pods-lookalike');
  });

  it('is allowed unpatched when the review names no kind at all', async () => {
    const body = admissionReview(optedIn, { uid: 'no-kind' });
    delete (body.request as Record<string, unknown>).kind;
    await expectAllowedUnpatched(body, 'no-kind');
  });
});

describe('a pod review for another operation', () => {
  it.each(['UPDATE', 'CONNECT'])('is allowed unpatched for %s', async (operation) => {
    await expectAllowedUnpatched(admissionReview(optedIn, { uid: operation, operation }), operation);
  });

  it('is allowed for DELETE, which carries no object, rather than refused as missing one', async () => {
    await expectAllowedUnpatched(admissionReview(null, { uid: 'delete', operation: 'DELETE' }), 'delete');
  });
});
