// One JSON log line per review, with what an operator needs to find it (uid, namespace, pod, decision, reason,
// duration) and nothing of the pod itself: no spec, no env values, no annotation values.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admissionReview } from './helpers/admission.js';
import { postJson, startServer, type TestServer } from './helpers/https.js';
import { podWith } from './helpers/pods.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

const secret = 'hunter2-do-not-log';

function podWithSecrets(labels: Record<string, string>) {
  const pod = podWith(labels, { 'example.com/token': secret });
  const metadata = pod.metadata as Record<string, unknown>;
  delete metadata.name;
  metadata.generateName = 'web-7c9f8d-';
  const [app] = (pod.spec as { containers: Record<string, unknown>[] }).containers;
  app!.env = [{ name: 'DB_PASSWORD', value: secret }];
  return pod;
}

describe('the log line of an injected pod', () => {
  it('is a single JSON line with uid, namespace, generateName, decision, reason, revision and duration', async () => {
    await postJson(server, admissionReview(podWithSecrets({ 'sidecar.istio.io/inject': 'true' }), { uid: 'logged-1' }));
    const lines = server.logs.filter((line) => line.uid === 'logged-1');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 30,
      msg: 'review',
      uid: 'logged-1',
      namespace: 'team',
      pod: 'web-7c9f8d-',
      decision: 'injected',
      reason: 'pod_opted_in',
      revision: 'default',
    });
    expect(lines[0]!.durationMs).toBeTypeOf('number');
  });
});

describe('the log line of a skipped pod', () => {
  it('gives the skip reason', async () => {
    await postJson(server, admissionReview(podWithSecrets({}), { uid: 'logged-2' }));
    expect(server.logs.find((line) => line.uid === 'logged-2')).toMatchObject({ decision: 'skipped', reason: 'not_opted_in' });
  });
});

describe('the log line of a bad request', () => {
  it('names the outcome at warn level', async () => {
    const before = server.logs.length;
    await postJson(server, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    expect(server.logs.slice(before)).toEqual([expect.objectContaining({ level: 40, msg: 'review', decision: 'missing-request' })]);
  });
});

describe('every line logged', () => {
  it('holds no env value, no annotation value and no part of the pod spec', () => {
    const everything = JSON.stringify(server.logs);
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain('DB_PASSWORD');
    expect(everything).not.toContain('example/app:1');
  });
});
