// The namespace informer against a tiny fake API server on loopback that serves only list and watch of
// namespaces (a real API server comes in a later issue). It proves our part: labels are served from the
// informer's cache, readiness waits for the first list, failures are retried with exponential backoff (the
// library itself does not restart after an error), and our own stop() ends it for good.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { NamespaceInformer } from '../src/kube/namespace-labels.js';

interface Seen {
  kind: 'list' | 'watch';
  resourceVersion: string | null;
  at: number;
}

type Respond = (res: ServerResponse, seen: Seen) => void;

/** Answers the n-th list and the n-th watch with the n-th handler of each (the last one repeats). */
async function fakeApiServer(lists: Respond[], watches: Respond[]) {
  const seen: Seen[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (url.pathname !== '/api/v1/namespaces') {
      res.writeHead(404).end();
      return;
    }
    const kind = url.searchParams.get('watch') === 'true' ? 'watch' : 'list';
    const entry: Seen = { kind, resourceVersion: url.searchParams.get('resourceVersion'), at: performance.now() };
    seen.push(entry);
    const handlers = kind === 'watch' ? watches : lists;
    const index = Math.min(seen.filter((s) => s.kind === kind).length - 1, handlers.length - 1);
    handlers[index]!(res, entry);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    // The client refuses plain HTTP unless TLS verification is off; the fake serves HTTP to stay tiny.
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'fake', token: 'fake-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
    currentContext: 'fake',
  });
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { seen, kubeConfig, close };
}

const fail: Respond = (res) => {
  res.writeHead(500, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 500, message: 'etcd is down' }));
};

const namespace = (name: string, labels: Record<string, string>, resourceVersion: string) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels, resourceVersion },
});

const listTeamA: Respond = (res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'NamespaceList',
      metadata: { resourceVersion: '10' },
      items: [namespace('team-a', { 'istio-injection': 'enabled' }, '9')],
    }),
  );
};

/** A watch that sends team-b and then stays open, as a healthy API server's would. */
const watchTeamB: Respond = (res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write(`${JSON.stringify({ type: 'ADDED', object: namespace('team-b', { 'istio.io/rev': 'canary' }, '11') })}\n`);
};

function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  return { lines, logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) }) };
}

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('the namespace informer', () => {
  it('retries failed lists and watches with doubling delays, then serves labels from list and watch', async () => {
    const api = await fakeApiServer([fail, fail, listTeamA], [fail, watchTeamB]);
    cleanups.push(api.close);
    const { lines, logger } = capturedLogger();
    const informer = await NamespaceInformer.create(api.kubeConfig, { logger, initialBackoffMs: 20, maxBackoffMs: 1_000 });
    cleanups.push(() => informer.stop());

    informer.start();
    await until(() => api.seen.length >= 2, 'the second list');
    expect(informer.ready()).toBe(false);
    await until(() => informer.get('team-b') !== undefined, 'team-b from the watch');

    expect(api.seen.map((s) => s.kind)).toEqual(['list', 'list', 'list', 'watch', 'watch']);
    // After the list, the restarted watch resumes from its resourceVersion instead of listing again.
    expect(api.seen.slice(3).map((s) => s.resourceVersion)).toEqual(['10', '10']);
    const restarts = lines.filter((line) => line.msg === 'namespace informer failed; restarting');
    expect(restarts.map((line) => line.delayMs)).toEqual([20, 40, 80]);
    const at = api.seen.map((s) => s.at);
    // Timers never fire early by more than a millisecond's rounding.
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(19);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(39);
    expect(at[4]! - at[3]!).toBeGreaterThanOrEqual(79);

    expect(informer.ready()).toBe(true);
    expect(informer.get('team-a')).toEqual({ 'istio-injection': 'enabled' });
    expect(informer.get('team-b')).toEqual({ 'istio.io/rev': 'canary' });
    expect(informer.get('team-c')).toBeUndefined();
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'namespace informer watching' }));
  });

  it('is ready once the list is in, even while its watch still fails', async () => {
    const api = await fakeApiServer([listTeamA], [fail]);
    cleanups.push(api.close);
    const informer = await NamespaceInformer.create(api.kubeConfig, { logger: capturedLogger().logger, initialBackoffMs: 50 });
    cleanups.push(() => informer.stop());
    informer.start();
    await until(() => api.seen.some((s) => s.kind === 'watch'), 'the first watch');
    expect(informer.ready()).toBe(true);
    expect(informer.get('team-a')).toEqual({ 'istio-injection': 'enabled' });
  });

  it('does not restart after its own stop, even though stopping reports an error', async () => {
    const api = await fakeApiServer([listTeamA], [watchTeamB]);
    cleanups.push(api.close);
    const { lines, logger } = capturedLogger();
    const informer = await NamespaceInformer.create(api.kubeConfig, { logger, initialBackoffMs: 10 });
    informer.start();
    await until(() => informer.get('team-b') !== undefined, 'team-b from the watch');
    const requests = api.seen.length;

    await informer.stop();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(api.seen.length).toBe(requests);
    expect(lines.filter((line) => line.msg === 'namespace informer failed; restarting')).toEqual([]);
  });

  it('cancels a pending restart when stopped', async () => {
    const api = await fakeApiServer([fail], [fail]);
    cleanups.push(api.close);
    const informer = await NamespaceInformer.create(api.kubeConfig, { logger: capturedLogger().logger, initialBackoffMs: 100 });
    informer.start();
    await until(() => api.seen.length === 1, 'the first list');
    await informer.stop();
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(api.seen.length).toBe(1);
    expect(informer.ready()).toBe(false);
  });

  it('stopped during its first list, leaves no watch open', async () => {
    let openWatches = 0;
    const slowList: Respond = (res) => void setTimeout(() => listTeamA(res, {} as Seen), 100);
    const countedWatch: Respond = (res, seen) => {
      openWatches++;
      res.on('close', () => openWatches--);
      watchTeamB(res, seen);
    };
    const api = await fakeApiServer([slowList], [countedWatch]);
    cleanups.push(api.close);
    const informer = await NamespaceInformer.create(api.kubeConfig, { logger: capturedLogger().logger });
    informer.start();
    await until(() => api.seen.length === 1, 'the first list');
    await informer.stop();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(openWatches).toBe(0);
  });
});
