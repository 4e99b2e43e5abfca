// SIGTERM while a real `serve` process is under sustained load: workers on kept-alive connections and workers
// opening a new connection for every review, as API servers do, plus reviews whose bodies are still arriving when
// the listener closes. server-sigterm.test.ts shows the sequence with a few reviews; this shows it holds when
// reviews never stop coming: everything is answered through the shutdown delay, busy clients are moved off their
// kept-alive connections before the drain closes them, every review the server began is answered, new
// connections are refused from the close on, and the process exits 0 within its bound.

import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdmissionReviewAnswer } from '../src/admission/encode.js';
import { DRAIN_DEADLINE_MS } from '../src/server/app.js';
import { admissionReview } from './helpers/admission.js';
import { rawTls, readRawResponse, type TestServer } from './helpers/https.js';
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
import { EXIT_GRACE_MS } from '../src/cli/serve.js';

const SHUTDOWN_DELAY_MS = 1_500;
const WORKERS = 6;
const WARM_UP_MS = 1_000;
const SLOW_REVIEWS = 8;

let target: ServeTarget;
let signalledAt: number;
let exit: { code: number | null; at: number };
let keptAlive: ReviewOutcome[];
let fresh: ReviewOutcome[];
/** When the first new connection was refused: the listener had closed. */
let listenerClosedAt: number;
let slowAnswers: { uid: string; status: number; head: string; body: string }[];
/** The uids of every review the server logged an outcome for. */
let handled: Set<string>;

/** Headers and half the body of a review, sent: in flight until finish() sends the rest. */
async function slowReview(uid: string) {
  const body = JSON.stringify(admissionReview(podWith({ 'sidecar.istio.io/inject': 'true' }), { uid }));
  const socket: TLSSocket = await rawTls({ port: target.port, ca: target.ca } as TestServer);
  socket.on('error', () => {});
  const half = Math.floor(body.length / 2);
  const head = `POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}`;
  socket.write(`${head}\r\n\r\n${body.slice(0, half)}`);
  return {
    async finish() {
      const answer = readRawResponse(socket);
      socket.end(body.slice(half));
      return { uid, ...(await answer) };
    },
  };
}

beforeAll(async () => {
  target = await startServeWithCertificates(['--shutdown-delay', `${SHUTDOWN_DELAY_MS}ms`]);
  const keptAliveLoad = startLoad(target, { workers: WORKERS, connections: 'keep-alive' });
  const freshLoad = startLoad(target, { workers: WORKERS, connections: 'fresh' });
  await new Promise((resolve) => setTimeout(resolve, WARM_UP_MS));
  const slow = await Promise.all(Array.from({ length: SLOW_REVIEWS }, (_, i) => slowReview(`slow-${i}`)));

  signalledAt = performance.now();
  target.serving.child.kill('SIGTERM');
  await until(
    () => freshLoad.outcomes.some((outcome) => outcome.sentAt > signalledAt && !outcome.connected),
    'a refused connection',
    SHUTDOWN_DELAY_MS + 10_000,
  );
  listenerClosedAt = Math.min(
    ...freshLoad.outcomes.filter((outcome) => outcome.sentAt > signalledAt && !outcome.connected).map((o) => o.endedAt),
  );
  slowAnswers = await Promise.all(slow.map((review) => review.finish()));
  exit = await target.serving.exited;
  [keptAlive, fresh] = await Promise.all([keptAliveLoad.stop(), freshLoad.stop()]);
  handled = new Set(target.serving.lines.filter((line) => line.msg === 'review').map((line) => String(line.uid)));
}, 40_000);

afterAll(() => target?.cleanup());

const all = () => [...keptAlive, ...fresh];

describe('serve on SIGTERM under sustained concurrent load', () => {
  it('answers every review, on old and new connections alike, until the shutdown delay is over', () => {
    const beforeClose = all().filter((outcome) => outcome.endedAt < signalledAt + SHUTDOWN_DELAY_MS);
    expect(beforeClose.filter((outcome) => outcome.sentAt > signalledAt).length).toBeGreaterThan(50);
    expect(tally(beforeClose.filter(failed))).toEqual({});
    expect(listenerClosedAt - signalledAt).toBeGreaterThanOrEqual(SHUTDOWN_DELAY_MS);
  });

  it('tells busy clients to leave their kept-alive connections as soon as shutdown begins', () => {
    // Otherwise the drain would close them with their next review already on the wire, and reset that review.
    const lateInTheDelay = keptAlive.filter((outcome) => outcome.sentAt > signalledAt + SHUTDOWN_DELAY_MS / 2);
    expect(lateInTheDelay.filter((outcome) => outcome.reusedConnection)).toEqual([]);
  });

  it('completes the reviews whose bodies were still arriving when the listener closed, with Connection: close', () => {
    expect(slowAnswers).toHaveLength(SLOW_REVIEWS);
    for (const answer of slowAnswers) {
      expect(answer.status).toBe(200);
      expect(answer.head.toLowerCase()).toContain('connection: close');
      const { response } = JSON.parse(answer.body) as AdmissionReviewAnswer;
      expect(response).toMatchObject({ uid: answer.uid, allowed: true });
    }
  });

  it('delivers the answer of every review it began to its client', () => {
    const began = all().filter((outcome) => handled.has(outcome.uid));
    expect(began.length).toBeGreaterThan(100);
    expect(tally(began.filter(failed))).toEqual({});
  });

  it('fails no review on a connection it accepted: only connections refused once the listener closed', () => {
    const failures = all().filter(failed);
    expect(failures.filter((outcome) => outcome.connected)).toEqual([]);
    // The first refusals are connections the kernel had queued for the listener as it closed: they are reset.
    const refusal = (error: string | undefined) => error === 'ECONNREFUSED' || error === 'ECONNRESET';
    expect(failures.filter((outcome) => !refusal(outcome.error))).toEqual([]);
  });

  it('refuses every new connection once the listener has closed', () => {
    const afterClose = all().filter((outcome) => outcome.sentAt > listenerClosedAt && !outcome.reusedConnection);
    expect(afterClose.length).toBeGreaterThan(0);
    expect(afterClose.filter((outcome) => outcome.connected)).toEqual([]);
  });

  it('exits 0 within the shutdown delay, the drain deadline and the exit grace', () => {
    expect(exit.code).toBe(0);
    expect(exit.at - signalledAt).toBeLessThan(SHUTDOWN_DELAY_MS + DRAIN_DEADLINE_MS + EXIT_GRACE_MS);
  });
});
