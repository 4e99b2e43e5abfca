// The graceful close `serve` runs on SIGTERM: a request in flight is still answered, a kept-alive idle connection
// does not hold the close for the keep-alive timeout (95 s), and a connection that never finishes its request is
// cut at the drain deadline.

import { Agent } from 'node:https';
import { describe, expect, it } from 'vitest';
import type { AdmissionReviewAnswer } from '../src/admission/encode.js';
import { closeGracefully } from '../src/server/app.js';
import { admissionReview } from './helpers/admission.js';
import { postJson, rawTls, readRawResponse, startServer } from './helpers/https.js';
import { podWith } from './helpers/pods.js';

const body = JSON.stringify(admissionReview(podWith({ 'sidecar.istio.io/inject': 'true' }), { uid: 'in-flight' }));
const head = `POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;

describe('closing gracefully', () => {
  it('answers the request in flight and does not wait for an idle kept-alive connection', async () => {
    const server = await startServer();
    const agent = new Agent({ keepAlive: true, ca: server.ca });
    // A finished request leaves this connection open and idle in the agent.
    expect((await postJson(server, admissionReview(podWith()), '/inject', agent)).status).toBe(200);
    // Half a request: headers and part of the body.
    const inFlight = await rawTls(server);
    inFlight.write(head + body.slice(0, 100));
    await new Promise((resolve) => setTimeout(resolve, 50));

    const started = performance.now();
    const closed = closeGracefully(server.app);
    const response = readRawResponse(inFlight);
    inFlight.write(body.slice(100));
    const { status, head: responseHead, body: responseBody } = await response;
    await closed;

    expect(status).toBe(200);
    expect(responseHead.toLowerCase()).toContain('connection: close');
    expect(JSON.parse(responseBody) as AdmissionReviewAnswer).toMatchObject({ response: { uid: 'in-flight', allowed: true } });
    expect(performance.now() - started).toBeLessThan(2_000);
    agent.destroy();
  });

  it('cuts a request that never finishes at the drain deadline', async () => {
    const server = await startServer();
    const stalled = await rawTls(server);
    stalled.on('error', () => {});
    stalled.write(head + body.slice(0, 100));
    await new Promise((resolve) => setTimeout(resolve, 50));

    const started = performance.now();
    await closeGracefully(server.app, 300);
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2_000);
    await new Promise((resolve) => (stalled.destroyed ? resolve(undefined) : stalled.once('close', resolve)));
  });
});

describe('a server that was never used', () => {
  it('closes at once', async () => {
    const server = await startServer();
    const started = performance.now();
    await closeGracefully(server.app);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});
