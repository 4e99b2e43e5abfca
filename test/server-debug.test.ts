// Anyone can ask the running webhook why a pod would or would not be injected (with the namespace labels it
// knows), and which bootstrap the envoy template would give its proxy, checked against Envoy's schema.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootstrapProblems } from '../src/bootstrap-validation/load.js';
import { resolveConfig } from '../src/config/schema.js';
import { podWith } from './helpers/pods.js';
import { json, postJson, startServer, type TestServer } from './helpers/https.js';

let server: TestServer;
beforeAll(async () => {
  const config = resolveConfig({ revision: 'canary', namespaces: { shop: { 'istio.io/rev': 'canary' }, legacy: { 'istio-injection': 'enabled' } } });
  server = await startServer({ config, validateBootstrap: bootstrapProblems });
}, 30_000);
afterAll(() => server.close());

describe('POST /debug/check', () => {
  it('explains, step by step, that a pod in a canary namespace is injected by this canary server', async () => {
    const answer = await postJson(server, podWith(), '/debug/check?namespace=shop');
    expect(answer.status).toBe(200);
    const body = json<{ inject: boolean; reason: string; steps: string[] }>(answer);
    expect(body.inject).toBe(true);
    expect(body.reason).toBe('namespace_revision');
    expect(body.steps.at(-1)).toMatch(/^inject: the namespace label istio.io\/rev=canary/);
  });

  it('says which revision would inject a pod this server skips', async () => {
    const body = json<{ inject: boolean; reason: string; revision: string }>(await postJson(server, podWith(), '/debug/check?namespace=legacy'));
    expect(body).toMatchObject({ inject: false, reason: 'other_revision', revision: 'default' });
  });

  it('answers 400 to a body that is not a pod', async () => {
    expect((await postJson(server, [1, 2], '/debug/check')).status).toBe(400);
  });
});

describe('POST /debug/bootstrap', () => {
  it('shows the bootstrap a pod of this revision would start from, pointing at istiod-canary', async () => {
    const answer = await postJson(server, podWith(), '/debug/bootstrap?namespace=shop');
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('"address":"istiod-canary.istio-system.svc","port_value":15012');
  });

  it('answers 422 with the problems when the pod would get a bootstrap Envoy refuses', async () => {
    const pod = podWith({}, { 'proxy.istio.io/config': 'tracing: {zipkin: {address: "zipkin:99999"}}' });
    const answer = await postJson(server, pod, '/debug/bootstrap?namespace=shop');
    expect(answer.status).toBe(422);
    expect(answer.text).toMatch(/port_value: 99999 is out of range/);
  });
});
