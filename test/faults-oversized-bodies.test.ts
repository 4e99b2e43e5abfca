// Bodies over the 6 MiB limit sent to a real `serve` process, many at once, while other clients keep sending
// reviews. server-body-limit.test.ts shows one such body gets its 413; this shows what they cost the server: a body
// announced too long is refused without a byte of it kept, one sent without a length is kept only up to the limit,
// so the server's memory does not grow with what the clients send; and a body that keeps coming is cut off.

import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTCOMES } from '../src/admission/outcomes.js';
import { rawTls, readRawResponse, type TestServer } from './helpers/https.js';
import {
  failed,
  MIB,
  peakResidentBytes,
  resetPeakResident,
  residentBytes,
  type ServeTarget,
  startLoad,
  startServeWithCertificates,
  tally,
} from './helpers/load.js';
import { REQUEST_TIMEOUT_MS, TIMEOUT_CHECK_INTERVAL_MS } from '../src/server/app.js';

const CHUNK = Buffer.alloc(256 * 1024, ' ');
const TOO_LARGE = { error: 'too-large', message: OUTCOMES['too-large'].message };

let target: ServeTarget;
beforeAll(async () => {
  target = await startServeWithCertificates();
});
afterAll(() => target?.cleanup());

const head = (framing: string) =>
  `POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n${framing}\r\n\r\n`;
const chunked = (chunk: Buffer) =>
  Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);

interface Streamed {
  status: number;
  body: string;
  /** Bytes of body written before the end, or before the server closed the connection. */
  sent: number;
  /** Milliseconds from the request's head to the answer. */
  answeredAfterMs: number;
  /** Milliseconds from the request's head to the last byte written. */
  writtenAfterMs: number;
  /** Milliseconds from the request's head to the server's close, when it closed before the body was written. */
  cutOffAfterMs?: number;
}

/**
 * Sends a body of `total` bytes, at `bytesPerSecond` or as fast as the server reads, while reading the answer as
 * it comes, as a client that writes its whole body regardless would.
 */
async function streamBody(options: { total: number; withLength: boolean; bytesPerSecond?: number }): Promise<Streamed> {
  const socket: TLSSocket = await rawTls({ port: target.port, ca: target.ca } as TestServer);
  let closedAt: number | undefined;
  socket.on('error', () => {});
  socket.once('close', () => (closedAt = performance.now()));
  const started = performance.now();
  const answer = readRawResponse(socket).then((response) => ({ ...response, at: performance.now() }));
  socket.write(head(options.withLength ? `Content-Length: ${options.total}` : 'Transfer-Encoding: chunked'));
  let sent = 0;
  while (sent < options.total && closedAt === undefined) {
    const chunk = CHUNK.subarray(0, Math.min(CHUNK.length, options.total - sent));
    const flushed = socket.write(options.withLength ? chunk : chunked(chunk));
    sent += chunk.length;
    if (!flushed) {
      // Whichever comes first; the other listener goes too, or each wait would leave one on the socket.
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('drain', done).off('close', done);
          resolve();
        };
        socket.once('drain', done).once('close', done);
      });
    }
    if (options.bytesPerSecond) {
      const due = started + (sent / options.bytesPerSecond) * 1000;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
    }
  }
  const writtenAt = performance.now();
  const cutOffAt = closedAt;
  if (!options.withLength && cutOffAt === undefined) socket.write('0\r\n\r\n');
  const { status, body, at } = await answer;
  socket.destroy();
  return {
    status,
    body,
    sent,
    answeredAfterMs: at - started,
    writtenAfterMs: writtenAt - started,
    cutOffAfterMs: cutOffAt === undefined ? undefined : cutOffAt - started,
  };
}

/** Runs `flood` while two clients send ordinary reviews; returns its result, theirs, and the server's peak growth. */
async function underLoad<T>(flood: () => Promise<T>) {
  const pid = target.serving.child.pid!;
  const load = startLoad(target, { workers: 2, connections: 'keep-alive' });
  await new Promise((resolve) => setTimeout(resolve, 200));
  resetPeakResident(pid);
  const before = residentBytes(pid);
  const result = await flood();
  const peakGrowth = peakResidentBytes(pid) - before;
  return { result, reviews: await load.stop(), peakGrowth };
}

describe('many bodies over the limit at once', () => {
  const CLIENTS = 16;
  const BODY_BYTES = 48 * MIB;
  // 768 MiB in all: buffering the bodies would take that much. Reading them through takes what a busy server
  // takes anyway, which a process fresh from start-up still has to grow to (about 120 MiB here, however much is
  // sent), plus, for bodies without a length, up to the limit of each until it is refused.
  const MEMORY_BOUND = (CLIENTS * BODY_BYTES) / 3;

  it.each([
    ['announced by Content-Length are answered 413 before their body is sent, and none of it is kept', true],
    ['sent without a length are answered 413 once past the limit, and kept only up to it', false],
  ])('%s', async (_title, withLength) => {
    const { result, reviews, peakGrowth } = await underLoad(() =>
      Promise.all(Array.from({ length: CLIENTS }, () => streamBody({ total: BODY_BYTES, withLength }))),
    );
    for (const streamed of result) {
      expect(streamed.status).toBe(413);
      expect(JSON.parse(streamed.body)).toEqual(TOO_LARGE);
      expect(streamed.answeredAfterMs).toBeLessThan(streamed.writtenAfterMs);
    }
    expect(peakGrowth).toBeLessThan(MEMORY_BOUND);
    expect(reviews.length).toBeGreaterThan(0);
    expect(tally(reviews.filter(failed))).toEqual({});
  });
});

describe('a 100 MiB body streamed without a length', () => {
  it('is answered 413 once past the limit, then cut off at the request timeout instead of read to its end', async () => {
    const total = 100 * MIB;
    // Slow enough that the whole body would take well over the request timeout.
    const bytesPerSecond = 6 * MIB;
    const { result, reviews } = await underLoad(() => streamBody({ total, withLength: false, bytesPerSecond }));
    expect(result.status).toBe(413);
    expect(JSON.parse(result.body)).toEqual(TOO_LARGE);
    expect(result.sent).toBeLessThan(total);
    expect(result.answeredAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS / 2);
    expect(result.cutOffAfterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 500);
    expect(result.cutOffAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS + TIMEOUT_CHECK_INTERVAL_MS + 3_000);
    expect(tally(reviews.filter(failed))).toEqual({});
  }, 30_000);
});
