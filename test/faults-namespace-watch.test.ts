// The namespace watch of a real `serve` process dropped while reviews keep coming and namespaces are relabelled.
// Pods here carry no opt-in of their own, so each decision rests on the namespace's labels as the server knows
// them. Twice the fake API server cuts the watch and a namespace changes before the informer is back:
// - the first time the API server also refuses the informer's first retry, so the informer backs off twice and
//   then resumes the watch from where it was, being sent what it missed;
// - the second time its history has been compacted meanwhile, so the resumed watch is told 410 Expired and the
//   informer lists again.
// Throughout, every review is answered and the server stays ready; during each outage decisions follow the last
// labels known; after each reconnection they follow the new ones, and never go back.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKubeApi, type NamespaceRequest } from './helpers/fake-kube-api.js';
import { send, type TestServer } from './helpers/https.js';
import {
  failed,
  type ReviewOutcome,
  type ServeTarget,
  startLoad,
  startServeWithCertificates,
  tally,
} from './helpers/load.js';
import { podWith } from './helpers/pods.js';
import { until } from './helpers/self-managed.js';

const ENABLED = { 'istio-injection': 'enabled' };
const DISABLED = { 'istio-injection': 'disabled' };
/** Opted in from start to end. */
const STEADY = 'steady';
/** Opted in and out while the watch is down the first time. */
const OPTED_IN_FIRST = 'opted-in-first';
const OPTED_OUT_FIRST = 'opted-out-first';
/** Opted in while the watch is down the second time. */
const OPTED_IN_SECOND = 'opted-in-second';
const NAMESPACES = [STEADY, OPTED_IN_FIRST, OPTED_OUT_FIRST, OPTED_IN_SECOND];
/** The informer's first restart delay, doubled after each failed one (namespace-labels.ts). */
const INITIAL_BACKOFF_MS = 1_000;
const BETWEEN_FAULTS_MS = 1_000;
/** How soon after a reconnection reviews follow the new labels: at once, but a busy machine may lag. */
const PROPAGATION_BOUND_MS = 2_000;

interface Outage {
  droppedAt: number;
  /** When the API server began to send what the informer missed: the resumed watch, or the list. */
  reconnectedAt: number;
  /** Every list and watch the informer made from the drop to the reconnection. */
  requests: NamespaceRequest[];
}

let api: FakeKubeApi;
let scratch: string;
let target: ServeTarget;
let reviews: ReviewOutcome[];
let readiness: number[];
let first: Outage;
let second: Outage;

/** Drops the watch, changes labels, and waits for a watch that is answered and stays open. */
async function outage(change: () => void): Promise<Outage> {
  const requestsBefore = api.namespaceRequests.length;
  const droppedAt = performance.now();
  expect(api.dropNamespaceWatches()).toBe(1);
  change();
  // A watch told 410 Expired is answered 200 too, but it ends at once.
  const isReconnection = (request: NamespaceRequest) => request.kind === 'watch' && request.status === 200;
  const since = () => api.namespaceRequests.slice(requestsBefore);
  await until(() => since().some(isReconnection), 'the informer to watch again', 15_000);
  const requests = since();
  const reconnection = requests.find((request) => request.status === 200)!;
  return { droppedAt, reconnectedAt: reconnection.at, requests };
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'sidecar-injector-watch-'));
  api = await FakeKubeApi.start();
  api.putNamespace(STEADY, ENABLED);
  api.putNamespace(OPTED_IN_FIRST, {});
  api.putNamespace(OPTED_OUT_FIRST, ENABLED);
  api.putNamespace(OPTED_IN_SECOND, {});
  const kubeconfig = join(scratch, 'kubeconfig');
  api.writeKubeconfig(kubeconfig);
  target = await startServeWithCertificates([], { KUBECONFIG: kubeconfig });
  const probeTarget = { port: target.port, ca: target.ca } as TestServer;
  await until(async () => (await send(probeTarget, '/readyz')).status === 200, 'the server to be ready', 10_000);

  readiness = [];
  let probing = true;
  const probe = (async () => {
    while (probing) {
      readiness.push((await send(probeTarget, '/readyz')).status);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  const reviewOf = (sequence: number) => ({ namespace: NAMESPACES[sequence % NAMESPACES.length]!, pod: podWith() });
  const loads = [
    startLoad(target, { workers: 3, connections: 'keep-alive', reviewOf }),
    startLoad(target, { workers: 3, connections: 'fresh', reviewOf }),
  ];

  await new Promise((resolve) => setTimeout(resolve, BETWEEN_FAULTS_MS));
  first = await outage(() => {
    api.fail(1, 'GET', /^\/api\/v1\/namespaces$/);
    api.putNamespace(OPTED_IN_FIRST, ENABLED);
    api.putNamespace(OPTED_OUT_FIRST, DISABLED);
  });
  await new Promise((resolve) => setTimeout(resolve, BETWEEN_FAULTS_MS));
  second = await outage(() => {
    api.putNamespace(OPTED_IN_SECOND, ENABLED);
    api.compactNamespaceHistory();
  });
  await new Promise((resolve) => setTimeout(resolve, BETWEEN_FAULTS_MS));

  reviews = (await Promise.all(loads.map((load) => load.stop()))).flat();
  probing = false;
  await probe;
}, 60_000);

afterAll(async () => {
  target?.cleanup();
  await api?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** When the first review of the namespace sent after `from` and decided `injected` was answered. */
const firstAnswered = (namespace: string, injected: boolean, from: number) =>
  Math.min(
    ...reviews
      .filter((review) => review.namespace === namespace && review.sentAt >= from && review.patched === injected)
      .map((review) => review.endedAt),
  );

const kindAndStatus = ({ kind, status }: NamespaceRequest) => `${kind} ${status}`;

/** The namespace's reviews in the order they were sent: 'i' injected, 's' skipped. */
const decisions = (namespace: string, from = 0, to = Number.POSITIVE_INFINITY) =>
  reviews
    .filter((review) => review.namespace === namespace && review.sentAt >= from && review.endedAt <= to)
    .sort((a, b) => a.sentAt - b.sentAt)
    .map((review) => (review.patched ? 'i' : 's'))
    .join('');

describe('a namespace watch dropped under load while namespaces are relabelled', () => {
  it('leaves no review unanswered and the server ready throughout', () => {
    expect(reviews.length).toBeGreaterThan(500);
    expect(tally(reviews.filter(failed))).toEqual({});
    expect(readiness.length).toBeGreaterThan(10);
    expect(readiness.filter((status) => status !== 200)).toEqual([]);
  });

  it('decides by the last labels it knew while the watch is down', () => {
    for (const { droppedAt, reconnectedAt } of [first, second]) {
      expect(decisions(STEADY, droppedAt, reconnectedAt)).toMatch(/^i+$/);
    }
    expect(decisions(OPTED_IN_FIRST, first.droppedAt, first.reconnectedAt)).toMatch(/^s+$/);
    expect(decisions(OPTED_OUT_FIRST, first.droppedAt, first.reconnectedAt)).toMatch(/^i+$/);
    expect(decisions(OPTED_IN_SECOND, second.droppedAt, second.reconnectedAt)).toMatch(/^s+$/);
  });

  it('decides by the new labels soon after it has reconnected, and never goes back', () => {
    expect(decisions(STEADY)).toMatch(/^i+$/);
    const changes = [
      { namespace: OPTED_IN_FIRST, injected: true, outage: first },
      { namespace: OPTED_OUT_FIRST, injected: false, outage: first },
      { namespace: OPTED_IN_SECOND, injected: true, outage: second },
    ];
    for (const { namespace, injected, outage } of changes) {
      const switched = firstAnswered(namespace, injected, outage.droppedAt);
      expect(switched - outage.reconnectedAt).toBeLessThan(PROPAGATION_BOUND_MS);
      // Reviews sent before that answer may have been decided before it, in either order; none sent after.
      expect(decisions(namespace, switched)).toMatch(injected ? /^i+$/ : /^s+$/);
    }
  });

  it('retries with growing delays while the API server refuses it, then resumes the watch where it was', () => {
    expect(first.requests.map(kindAndStatus)).toEqual(['watch 503', 'watch 200']);
    const [refused, resumed] = first.requests as [NamespaceRequest, NamespaceRequest];
    expect(refused.at - first.droppedAt).toBeGreaterThanOrEqual(INITIAL_BACKOFF_MS - 50);
    expect(resumed.at - refused.at).toBeGreaterThanOrEqual(2 * INITIAL_BACKOFF_MS - 50);
    expect(resumed.resourceVersion).toBe(refused.resourceVersion);
  });

  it('lists again when the history it would resume from is gone', () => {
    expect(second.requests.map(kindAndStatus)).toEqual(['watch 410', 'list 200', 'watch 200']);
    expect(second.requests[0]!.at - second.droppedAt).toBeGreaterThanOrEqual(INITIAL_BACKOFF_MS - 50);
  });
});
