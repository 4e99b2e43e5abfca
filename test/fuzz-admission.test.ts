// Property-based fuzzing of the webhook: arbitrary bodies, AdmissionReviews with hostile values at every level and
// hostile pods, through the whole server (Fastify's inject for speed, then fewer over real HTTPS). Whatever comes
// in, the server answers: a valid AdmissionReview carrying the request's uid, or a 4xx; never a 5xx, never a
// throw. A patch applies cleanly to the object it came with, and the log line holds only the named fields.

import jsonpatch from 'fast-json-patch';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/schema.js';
import type { Json, JsonObject } from '../src/core/json.js';
import { staticNamespaceLabels } from '../src/kube/namespace-labels.js';
import { buildApp, type InjectorApp } from '../src/server/app.js';
import { admissionReview } from './helpers/admission.js';
import { anyJson, fuzzPod, hostileString, runs, SECRET } from './helpers/fuzz.js';
import { type LogLine, postJson, startServer, testCertificates, type TestServer } from './helpers/https.js';

/** The fields a review's log line may carry (the core issue's list, plus pino's own). */
const LOG_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'uid', 'namespace', 'pod', 'decision', 'reason', 'durationMs', 'revision', 'error']);

const config = resolveConfig({ namespaces: { team: { 'istio-injection': 'enabled' }, plain: {} } });
const logs: LogLine[] = [];
let app: InjectorApp;
let server: TestServer;

beforeAll(async () => {
  const bundle = await testCertificates();
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  app = buildApp({ tls: { key: bundle.key, cert: bundle.cert }, config, namespaceLabels: staticNamespaceLabels(config.namespaces), logger });
  await app.ready();
  server = await startServer({ config });
});
afterAll(async () => {
  await app.close();
  await server.close();
});

const maybe = <T extends Json>(valid: fc.Arbitrary<T>): fc.Arbitrary<Json | undefined> =>
  fc.oneof({ weight: 8, arbitrary: valid }, { weight: 1, arbitrary: anyJson }, { weight: 1, arbitrary: fc.constant(undefined) });

const groupVersionKind = (kind: string, resource: string) =>
  fc.record({
    kind: maybe(fc.record({ group: maybe(fc.constant('')), version: maybe(fc.constant('v1')), kind: maybe(fc.constantFrom(kind, 'Deployment', 'Binding')) })),
    resource: maybe(fc.record({ group: maybe(fc.constant('')), version: maybe(fc.constant('v1')), resource: maybe(fc.constantFrom(resource, 'deployments')) })),
  });

const POD_KIND = { group: '', version: 'v1', kind: 'Pod' };
const POD_RESOURCE = { group: '', version: 'v1', resource: 'pods' };

/** A pod CREATE as the API server sends it, the pod being anything the fuzzer makes: the core's way in. */
const podCreateReview: fc.Arbitrary<JsonObject> = fc
  .record({
    apiVersion: fc.constantFrom('admission.k8s.io/v1', 'admission.k8s.io/v1beta1'),
    uid: fc.uuid(),
    namespace: fc.constantFrom('team', 'team', 'plain'),
    object: fuzzPod,
  })
  .map(({ apiVersion, uid, namespace, object }) => ({
    apiVersion,
    kind: 'AdmissionReview',
    request: { uid, kind: POD_KIND, resource: POD_RESOURCE, requestKind: POD_KIND, requestResource: POD_RESOURCE, namespace, operation: 'CREATE', object, oldObject: null, dryRun: false },
  }));

/** An AdmissionReview whose every field may be hostile or missing: the decoder's way in. */
const hostileEnvelope: fc.Arbitrary<JsonObject> = fc
  .record({
    apiVersion: maybe(fc.constantFrom('admission.k8s.io/v1', 'admission.k8s.io/v1beta1', 'admission.k8s.io/v2')),
    kind: maybe(fc.constant('AdmissionReview')),
    target: groupVersionKind('Pod', 'pods'),
    uid: maybe(fc.oneof(fc.uuid(), hostileString)),
    namespace: maybe(fc.constantFrom('team', 'plain', 'kube-system', '')),
    name: maybe(fc.constantFrom('web-0', '')),
    operation: maybe(fc.constantFrom('CREATE', 'CREATE', 'UPDATE', 'DELETE', 'CONNECT')),
    subResource: maybe(fc.constantFrom('', 'binding', 'status')),
    object: fc.oneof({ weight: 8, arbitrary: fuzzPod }, { weight: 1, arbitrary: anyJson }),
    extra: fc.dictionary(fc.constantFrom('dryRun', 'oldObject', 'options', 'userInfo', '__proto__', 'constructor', 'a/b~c'), anyJson, { maxKeys: 3 }),
  })
  .map(({ apiVersion, kind, target, extra, ...request }) => {
    const fields: Record<string, Json | undefined> = { ...extra, kind: target.kind, resource: target.resource, ...request };
    const requestObject: JsonObject = {};
    for (const [key, value] of Object.entries(fields)) {
      if (value !== undefined) Object.defineProperty(requestObject, key, { value, enumerable: true, writable: true, configurable: true });
    }
    const review: JsonObject = { request: requestObject };
    if (apiVersion !== undefined) review.apiVersion = apiVersion;
    if (kind !== undefined) review.kind = kind;
    return review;
  });

/** Mostly pod CREATEs, so most reviews reach the core; a hostile envelope often enough to keep the decoder busy. */
const hostileReview = fc.oneof({ weight: 3, arbitrary: podCreateReview }, { weight: 1, arbitrary: hostileEnvelope });

/** Bodies that are not AdmissionReviews at all: any JSON, or text that is barely JSON. */
const strayBody: fc.Arbitrary<string> = fc.oneof(
  anyJson.map((value) => JSON.stringify(value)),
  hostileString,
  fc.constantFrom('', '{', '{"kind":"AdmissionReview","request":', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', 'null', '[]', '\u0000'),
);

const contentType = fc.constantFrom('application/json', 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded');

interface Answer {
  status: number;
  body: string;
}

/** The invariants every answer keeps, whatever the request. */
function checkAnswer(sent: string, answer: Answer): void {
  expect(answer.status, answer.body).toBeLessThan(500);
  if (answer.status !== 200) {
    expect(answer.status).toBeGreaterThanOrEqual(400);
    return;
  }
  const review = JSON.parse(sent) as { apiVersion: string; request: { uid: string; object: JsonObject } };
  const reply = JSON.parse(answer.body) as { apiVersion: string; kind: string; response: Record<string, unknown> };
  expect(reply.kind).toBe('AdmissionReview');
  expect(reply.apiVersion).toBe(review.apiVersion);
  expect(reply.response.uid).toBe(review.request.uid);
  expect(typeof reply.response.allowed).toBe('boolean');
  if (reply.response.patch === undefined) return;
  expect(reply.response.patchType).toBe('JSONPatch');
  const patch = JSON.parse(Buffer.from(reply.response.patch as string, 'base64').toString('utf8')) as jsonpatch.Operation[];
  // validate=true: each operation is checked against the document as it is applied.
  jsonpatch.applyPatch(structuredClone(review.request.object), patch, true, false);
}

/**
 * Only the named fields, and nothing the pod holds but its name: no env value, no annotation. The refusal's
 * message is the exception the core issue names: it quotes the annotation value it refuses, as the user sees it.
 */
function checkLogs(lines: LogLine[]): void {
  for (const line of lines) {
    expect([...Object.keys(line)].filter((key) => !LOG_FIELDS.has(key)), JSON.stringify(line)).toEqual([]);
    const { error: _refusal, ...rest } = line;
    expect(JSON.stringify(rest)).not.toContain(SECRET);
  }
}

async function injectAnswer(body: string, type: string): Promise<Answer> {
  const response = await app.inject({ method: 'POST', url: '/inject', headers: { 'content-type': type }, payload: body });
  return { status: response.statusCode, body: response.body };
}

describe('the webhook under fuzzing', () => {
  it('answers any hostile AdmissionReview with a valid review of the same uid or a 4xx, and logs only the named fields', async () => {
    await fc.assert(
      fc.asyncProperty(hostileReview, async (review) => {
        const body = JSON.stringify(review);
        const before = logs.length;
        checkAnswer(body, await injectAnswer(body, 'application/json'));
        checkLogs(logs.slice(before));
      }),
      { numRuns: runs(400) },
    );
  });

  it('answers any other body with a 4xx and never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(strayBody, contentType, async (body, type) => {
        const before = logs.length;
        const answer = await injectAnswer(body, type);
        expect(answer.status, answer.body).toBeLessThan(500);
        checkLogs(logs.slice(before));
      }),
      { numRuns: runs(300) },
    );
  });

  it('keeps the same invariants over real HTTPS', async () => {
    await fc.assert(
      fc.asyncProperty(hostileReview, async (review) => {
        const before = server.logs.length;
        const answer = await postJson(server, review);
        checkAnswer(JSON.stringify(review), { status: answer.status, body: answer.text });
        checkLogs(server.logs.slice(before));
      }),
      { numRuns: runs(40, 0.05) },
    );
  });
});

describe('reviews the fuzzer broke the webhook with', () => {
  it('denies a pod whose userVolume annotation nests ten thousand levels deep, where it answered 500', async () => {
    const depth = 10_000;
    const pod = { metadata: { name: 'deep', annotations: { 'sidecar.istio.io/userVolume': `{"v":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}` } }, spec: { containers: [{ name: 'app', image: 'app' }] } };
    const body = JSON.stringify(admissionReview(pod, { uid: 'deep-user-volume' }));
    const answer = await injectAnswer(body, 'application/json');
    checkAnswer(body, answer);
    expect(JSON.parse(answer.body)).toMatchObject({ response: { uid: 'deep-user-volume', allowed: false, status: { code: 400 } } });
  });

  it('denies a pod whose own istio-proxy holds a value nested ten thousand levels deep, where it answered 500', async () => {
    const depth = 10_000;
    const proxy = { name: 'istio-proxy', image: 'custom', args: JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`) as unknown };
    const pod = { metadata: { name: 'deep' }, spec: { containers: [{ name: 'app', image: 'app' }, proxy] } };
    // Written by hand: JSON.stringify cannot write a value this deep.
    const body = JSON.stringify(admissionReview({ metadata: pod.metadata, spec: { containers: [] } }, { uid: 'deep-proxy' })).replace(
      '"containers":[]',
      `"containers":[{"name":"app","image":"app"},{"name":"istio-proxy","image":"custom","args":${'['.repeat(depth)}${']'.repeat(depth)}}]`,
    );
    const answer = await injectAnswer(body, 'application/json');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ response: { uid: 'deep-proxy', allowed: false, status: { code: 400 } } });
  });
});
