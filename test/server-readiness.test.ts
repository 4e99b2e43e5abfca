// /healthz answers whenever the process is up; /readyz only once namespace labels are known (TLS is loaded
// before the server exists). The labels here come from a stand-in whose ready() the test controls: the real
// informer's readiness depends on a list from an API server, which server-namespace-informer.test.ts covers
// against a fake one; this test is about what the server does with the answer.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NamespaceLabels } from '../src/kube/namespace-labels.js';
import { send, startServer, type TestServer } from './helpers/https.js';

let labelsKnown = false;
const standIn: NamespaceLabels = { get: () => undefined, ready: () => labelsKnown };

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ namespaceLabels: standIn });
});
afterAll(() => server.close());

describe('before namespace labels are known', () => {
  it('/healthz answers 200', async () => {
    const answer = await send(server, '/healthz');
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('ok\n');
  });

  it('/readyz answers 503 and says why', async () => {
    const answer = await send(server, '/readyz');
    expect(answer.status).toBe(503);
    expect(answer.text).toBe('namespace labels are not known yet\n');
  });
});

describe('once namespace labels are known', () => {
  it('/readyz answers 200', async () => {
    labelsKnown = true;
    const answer = await send(server, '/readyz');
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('ok\n');
  });
});

describe('with static labels from the config file', () => {
  it('/readyz answers 200 from the start', async () => {
    const fromConfig = await startServer();
    try {
      expect((await send(fromConfig, '/readyz')).status).toBe(200);
    } finally {
      await fromConfig.close();
    }
  });
});
