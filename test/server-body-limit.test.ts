// The 6 MiB body limit. A review under it is read (Fastify's own default would stop at 1 MiB); over it, the
// answer is 413, and it reaches a client that is still writing its body and reads only when done, instead of
// a connection reset.

import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AdmissionReviewAnswer } from '../src/admission/encode.js';
import { MAX_BODY_BYTES, OUTCOMES } from '../src/admission/outcomes.js';
import { admissionReview } from './helpers/admission.js';
import { expectHealthy, json, postJson, rawTls, readRawResponse, startServer, type TestServer } from './helpers/https.js';
import { podWith } from './helpers/pods.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterEach(() => expectHealthy(server));
afterAll(() => server.close());

const CHUNK = Buffer.alloc(256 * 1024, ' ');

/**
 * Writes `total` bytes in chunks with a pause between them, as a slow client would, honouring backpressure.
 * Fails if the server resets the connection meanwhile, which is what Fastify's default behaviour does.
 */
async function writeSlowly(socket: TLSSocket, total: number, frame: (chunk: Buffer) => Buffer = (c) => c): Promise<void> {
  let failure: Error | undefined;
  const onError = (error: Error) => {
    failure = error;
  };
  socket.on('error', onError);
  for (let sent = 0; sent < total && !failure && !socket.destroyed; sent += CHUNK.length) {
    if (!socket.write(frame(CHUNK))) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  socket.off('error', onError);
  if (failure || socket.destroyed) throw new Error(`the connection broke while the body was being written: ${failure?.message}`);
}

describe('a review just under the limit', () => {
  it('is read and answered', async () => {
    // A pod carrying a 5 MiB annotation: large, but what the API server could legitimately send.
    const pod = podWith({ 'sidecar.istio.io/inject': 'true' }, { 'example.com/blob': 'x'.repeat(5 * 1024 * 1024) });
    const answer = await postJson(server, admissionReview(pod, { uid: 'large' }));
    expect(answer.status).toBe(200);
    expect(json<AdmissionReviewAnswer>(answer).response).toMatchObject({ uid: 'large', allowed: true, patchType: 'JSONPatch' });
  });
});

describe('a body over the limit', () => {
  const tooLarge = { error: 'too-large', message: OUTCOMES['too-large'].message };
  const total = MAX_BODY_BYTES + 2 * 1024 * 1024;

  it('announced by Content-Length gets 413 even though the client writes all of it before reading', async () => {
    const socket = await rawTls(server);
    socket.write(
      `POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${total}\r\n\r\n`,
    );
    socket.pause();
    await writeSlowly(socket, total);
    const response = readRawResponse(socket);
    socket.resume();
    const { status, body } = await response;
    expect(status).toBe(413);
    expect(JSON.parse(body)).toEqual(tooLarge);
    socket.destroy();
  });

  it('sent in chunks without a length gets 413 once it passes the limit, also read after the last chunk', async () => {
    const socket = await rawTls(server);
    socket.write('POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    socket.pause();
    await writeSlowly(socket, total, (chunk) => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]));
    socket.write('0\r\n\r\n');
    const response = readRawResponse(socket);
    socket.resume();
    const { status, body } = await response;
    expect(status).toBe(413);
    expect(JSON.parse(body)).toEqual(tooLarge);
    socket.destroy();
  });
});
