// Every error row of the outcome table (src/admission/outcomes.ts) over HTTPS: each bad request gets its HTTP
// status and a JSON { error, message } naming what was wrong, nothing else (no stack, no internals), and the
// server keeps answering afterwards.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Outcome, OUTCOMES } from '../src/admission/outcomes.js';
import type { JsonObject } from '../src/core/json.js';
import { admissionReview } from './helpers/admission.js';
import {
  type Answer,
  expectHealthy,
  JSON_CONTENT_TYPE,
  json,
  postJson,
  send,
  startServer,
  type TestServer,
} from './helpers/https.js';
import { podWith } from './helpers/pods.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterEach(() => expectHealthy(server));
afterAll(() => server.close());

function expectOutcome(answer: Answer, outcome: Outcome): void {
  expect(answer.status).toBe(OUTCOMES[outcome].httpStatus);
  expect(answer.headers['content-type']).toMatch(/^application\/json/);
  expect(json(answer)).toEqual({ error: outcome, message: OUTCOMES[outcome].message });
}

const post = (body: string, headers: Record<string, string> = JSON_CONTENT_TYPE) =>
  send(server, '/inject', { method: 'POST', headers, body });

const review = admissionReview(podWith({ 'sidecar.istio.io/inject': 'true' }));
const requestOf = (value: JsonObject) => value.request as JsonObject;

describe('a request with no body', () => {
  it('is refused as empty-body when it says it is JSON', async () => {
    expectOutcome(await post(''), 'empty-body');
  });
  it('is refused as empty-body when it says nothing at all', async () => {
    expectOutcome(await send(server, '/inject', { method: 'POST' }), 'empty-body');
  });
});

describe('a body that is not JSON', () => {
  it.each([['truncated', '{"apiVersion": "admission.k8s.io/v1", '], ['not JSON at all', 'hello'], ['YAML', 'kind: AdmissionReview']])(
    'is refused as bad-json (%s)',
    async (_name, body) => {
      expectOutcome(await post(body), 'bad-json');
    },
  );
});

describe('JSON that is not an AdmissionReview', () => {
  it.each<[string, unknown]>([
    ['a bare Pod', podWith()],
    ['an array', [review]],
    ['null', null],
    ['a string', 'AdmissionReview'],
    ['an unknown apiVersion', { ...review, apiVersion: 'admission.k8s.io/v2' }],
    ['another kind', { ...review, kind: 'TokenReview' }],
  ])('is refused as not-admission-review (%s)', async (_name, body) => {
    expectOutcome(await postJson(server, body), 'not-admission-review');
  });
});

describe('an AdmissionReview missing what we answer by', () => {
  it.each<[string, unknown]>([
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }],
    ['a request that is not an object', { ...review, request: 'CREATE' }],
  ])('is refused as missing-request (%s)', async (_name, body) => {
    expectOutcome(await postJson(server, body), 'missing-request');
  });

  it.each<[string, unknown]>([
    ['no uid', { ...review, request: { ...requestOf(review), uid: undefined } }],
    ['an empty uid', { ...review, request: { ...requestOf(review), uid: '' } }],
    ['a numeric uid', { ...review, request: { ...requestOf(review), uid: 42 } }],
  ])('is refused as missing-uid (%s)', async (_name, body) => {
    expectOutcome(await postJson(server, body), 'missing-uid');
  });

  it.each<[string, unknown]>([
    ['no object', { ...review, request: { ...requestOf(review), object: undefined } }],
    ['a null object', { ...review, request: { ...requestOf(review), object: null } }],
    ['an object that is a string', { ...review, request: { ...requestOf(review), object: 'pod' } }],
  ])('is refused as missing-object for a Pod CREATE (%s)', async (_name, body) => {
    expectOutcome(await postJson(server, body), 'missing-object');
  });
});

describe('the content type', () => {
  it.each(['text/plain', 'application/yaml', 'application/x-www-form-urlencoded', 'application/json-patch+json'])(
    'other than JSON is refused as unsupported-media-type (%s)',
    async (contentType) => {
      expectOutcome(await post(JSON.stringify(review), { 'content-type': contentType }), 'unsupported-media-type');
    },
  );

  it('missing on a request with a body is refused as unsupported-media-type', async () => {
    expectOutcome(await send(server, '/inject', { method: 'POST', body: JSON.stringify(review) }), 'unsupported-media-type');
  });

  it.each(['application/json; charset=utf-8', 'application/json;charset=UTF-8', 'Application/JSON'])(
    '%s is JSON and is reviewed',
    async (contentType) => {
      const answer = await post(JSON.stringify(review), { 'content-type': contentType });
      expect(answer.status).toBe(200);
      expect(json<{ response: { allowed: boolean } }>(answer).response.allowed).toBe(true);
    },
  );
});

describe('a body shorter than its Content-Length', () => {
  // Node's HTTP parser never hands over such a body from a socket (it waits for the rest until the request
  // timeout), so only an in-process request can reach this row.
  it('is refused as bad-request', async () => {
    const answer = await server.app.inject({
      method: 'POST',
      url: '/inject',
      headers: { ...JSON_CONTENT_TYPE, 'content-length': '1000' },
      payload: JSON.stringify(review),
    });
    expect(answer.statusCode).toBe(400);
    expect(answer.json()).toEqual({ error: 'bad-request', message: OUTCOMES['bad-request'].message });
  });
});

describe('a route that does not exist', () => {
  it('gets a 404 that says where to POST', async () => {
    const answer = await send(server, '/mutate', { method: 'POST', headers: JSON_CONTENT_TYPE, body: '{}' });
    expect(answer.status).toBe(404);
    expect(json(answer)).toEqual({ error: 'not-found', message: 'no such route; POST an AdmissionReview to /inject' });
  });
});

describe('a bug while reviewing', () => {
  // A stand-in for a bug anywhere on the review path: the namespace label lookup throws.
  const secret = 'detail that must stay inside: /var/run/secrets/token';
  let failing: TestServer;
  beforeAll(async () => {
    failing = await startServer({
      namespaceLabels: {
        get: () => {
          throw new Error(secret);
        },
        ready: () => true,
      },
    });
  });
  afterAll(() => failing.close());

  it('answers internal-error without the error message or a stack, and logs the details', async () => {
    const answer = await postJson(failing, review);
    expect(answer.status).toBe(500);
    expect(json(answer)).toEqual({ error: 'internal-error', message: OUTCOMES['internal-error'].message });
    expect(answer.text).not.toContain('secret');
    expect(answer.text).not.toMatch(/\bat \S+ \(/);
    expect(failing.logs.filter((line) => line.msg === 'review')).toEqual([
      expect.objectContaining({ level: 50, msg: 'review', decision: 'internal-error', err: expect.objectContaining({ message: secret }) }),
    ]);
    await expectHealthy(failing);
  });
});
