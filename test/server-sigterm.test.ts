// `serve` as the kubelet stops it, a real process through the package's bin: on SIGTERM readiness fails first
// while connections are still accepted (--shutdown-delay, for the endpoint removal to reach every node), then the
// listener closes, reviews in flight complete, idle kept-alive connections are closed, and the process exits 0
// within the bound: the delay, plus the drain deadline for a review that never completes, plus a second's grace.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { AdmissionReviewAnswer } from '../src/admission/encode.js';
import { DRAIN_DEADLINE_MS } from '../src/server/app.js';
import { admissionReview } from './helpers/admission.js';
import { rawTls, readRawResponse, send, type TestServer } from './helpers/https.js';
import { podWith } from './helpers/pods.js';
import { type ServeProcess, startServe } from './helpers/serve-process.js';
import { EXIT_GRACE_MS } from '../src/cli/serve.js';

const SHUTDOWN_DELAY_MS = 1_000;
const PROBE_INTERVAL_MS = 25;

const scratch = mkdtempSync(join(tmpdir(), 'sidecar-injector-sigterm-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const running: ServeProcess[] = [];
afterEach(() => {
  for (const serving of running.splice(0)) if (serving.child.exitCode === null) serving.child.kill('SIGKILL');
});

async function serveWithShutdownDelay(delay: string): Promise<{ serving: ServeProcess; target: TestServer }> {
  const certDir = mkdtempSync(join(scratch, 'certs-'));
  const serving = await startServe(['--cert-dir', certDir, '--shutdown-delay', delay]);
  running.push(serving);
  return { serving, target: { port: serving.port, ca: readFileSync(join(certDir, 'ca.crt'), 'utf8') } as TestServer };
}

const reviewBody = (uid: string) => JSON.stringify(admissionReview(podWith({ 'sidecar.istio.io/inject': 'true' }), { uid }));
const reviewHead = (body: string) =>
  `POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;

/** A review whose headers and first bytes are sent: in flight until finish() sends the rest. */
async function reviewInFlight(target: TestServer, uid: string) {
  const body = reviewBody(uid);
  const socket = await rawTls(target);
  socket.on('error', () => {});
  socket.write(reviewHead(body) + body.slice(0, 100));
  return {
    socket,
    finish() {
      const answer = readRawResponse(socket);
      socket.write(body.slice(100));
      return answer;
    },
  };
}

/** /readyz on a new connection: its status, or 'refused'. */
async function probeReadiness(target: TestServer): Promise<number | 'refused'> {
  try {
    return (await send(target, '/readyz')).status;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ECONNREFUSED') return 'refused';
    throw error;
  }
}

/** GET /readyz on an open keep-alive connection. */
async function readinessOn(socket: TLSSocket) {
  const answer = readRawResponse(socket);
  socket.write('GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  return answer;
}

describe('serve on SIGTERM with reviews in flight', () => {
  it('turns not ready while still accepting, then refuses new connections, completes the reviews and exits 0', async () => {
    const { serving, target } = await serveWithShutdownDelay(`${SHUTDOWN_DELAY_MS}ms`);
    const inFlight = await Promise.all(['first', 'second', 'third'].map((uid) => reviewInFlight(target, uid)));
    const keptAlive = await rawTls(target);
    keptAlive.on('error', () => {});
    expect((await readinessOn(keptAlive)).status).toBe(200);

    const signalled = performance.now();
    serving.child.kill('SIGTERM');
    const readiness: (number | 'refused')[] = [];
    let onKeptAlive: Awaited<ReturnType<typeof readinessOn>> | undefined;
    while (readiness.filter((seen) => seen === 'refused').length < 2) {
      const seen = await probeReadiness(target);
      readiness.push(seen);
      if (seen === 503 && !onKeptAlive) onKeptAlive = await readinessOn(keptAlive);
      if (performance.now() - signalled > SHUTDOWN_DELAY_MS + 5_000) throw new Error(`never refused: ${readiness.join(' ')}`);
      await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
    }
    const refusedAfter = performance.now() - signalled;
    const answers = await Promise.all(inFlight.map((review) => review.finish()));
    const completed = performance.now();
    const { code, at: exitedAt } = await serving.exited;

    // Until the process handles the signal a probe may still see 200; after that, never again.
    expect(readiness.join(' ')).toMatch(/^(200 )*(503 )+refused refused$/);
    expect(refusedAfter).toBeGreaterThanOrEqual(SHUTDOWN_DELAY_MS - PROBE_INTERVAL_MS);
    expect(onKeptAlive).toMatchObject({ status: 503, body: 'shutting down\n' });
    for (const [index, answer] of answers.entries()) {
      expect(answer.status).toBe(200);
      expect(answer.head.toLowerCase()).toContain('connection: close');
      expect((JSON.parse(answer.body) as AdmissionReviewAnswer).response.uid).toBe(['first', 'second', 'third'][index]);
    }
    expect(code).toBe(0);
    // Nothing else held the exit: not the idle kept-alive connection, not the keep-alive timeout.
    expect(exitedAt - completed).toBeLessThan(EXIT_GRACE_MS);
    expect(exitedAt - signalled).toBeLessThan(SHUTDOWN_DELAY_MS + DRAIN_DEADLINE_MS + EXIT_GRACE_MS);
    expect(serving.lines.map((line) => line.msg)).toEqual(
      expect.arrayContaining([
        'shutting down: not ready, still serving until new connections stop coming',
        'draining open requests',
        'stopped',
      ]),
    );
  }, 30_000);

  it('cuts a review that never completes at the drain deadline and still exits 0 within the bound', async () => {
    const { serving, target } = await serveWithShutdownDelay('0s');
    const stalled = await reviewInFlight(target, 'stalled');
    const closed = new Promise((resolve) => stalled.socket.once('close', resolve));

    const signalled = performance.now();
    serving.child.kill('SIGTERM');
    const { code, at: exitedAt } = await serving.exited;
    await closed;

    expect(code).toBe(0);
    const took = exitedAt - signalled;
    expect(took).toBeGreaterThanOrEqual(DRAIN_DEADLINE_MS - 500);
    expect(took).toBeLessThan(DRAIN_DEADLINE_MS + EXIT_GRACE_MS + 1_000);
  }, 30_000);
});

describe('serve on SIGINT', () => {
  it('skips the shutdown delay: someone at a terminal has no endpoints to wait for', async () => {
    const { serving } = await serveWithShutdownDelay('10s');
    const signalled = performance.now();
    serving.child.kill('SIGINT');
    const { code, at: exitedAt } = await serving.exited;
    expect(code).toBe(0);
    expect(exitedAt - signalled).toBeLessThan(EXIT_GRACE_MS + 1_000);
  }, 30_000);
});
