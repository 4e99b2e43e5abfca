// A constant-arrival-rate client: request i is due at start + i/rate whatever happened to the ones before, and its
// latency runs from when it was due, not from when it went out. A closed-loop client (or autocannon's -R, which
// sends each second's quota in a burst) waits for slow answers before sending more and so hides exactly the
// stalls a tail percentile should show (coordinated omission).
//
//   node --import tsx bench/open-loop.ts URL BODY_FILE RATE SECONDS WARM_UP_SECONDS
//
// Prints one JSON line: percentiles in milliseconds over the requests due after the warm-up.
//
// HTTP/1.1 is spoken by hand over keep-alive TLS connections, one request at a time on each, as wrk does: Node's
// http client costs a few hundred microseconds per request, enough to make the client late at 1,000/s.
//
// Node's timers fire on whole milliseconds, too coarse at 1,000 requests/s, and polling for the due time would
// take a core from the server on this 2-core machine (the scheduler then preempts the server, which shows as
// tail latency of both servers). So a worker thread sleeps to each due time in Atomics.wait, which wakes within
// tens of microseconds, and posts the request's index to the main thread, whose event loop wakes on the message.

import { readFileSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';
import { Worker } from 'node:worker_threads';

const [url, bodyFile, rateArgument, secondsArgument, warmUpArgument] = process.argv.slice(2);
if (url === undefined || bodyFile === undefined || rateArgument === undefined || secondsArgument === undefined) {
  throw new Error('usage: open-loop.ts URL BODY_FILE RATE SECONDS [WARM_UP_SECONDS]');
}
const target = new URL(url);
const payload = readFileSync(bodyFile);
const rate = Number(rateArgument);
const total = Math.round(rate * Number(secondsArgument));
const warmUp = Math.round(rate * Number(warmUpArgument ?? 0));
const intervalMs = 1000 / rate;
// Enough connections that a stall queues requests on the server, not in the client: at 1,000/s even a 30 ms stall
// needs only 30 connections.
const MAX_CONNECTIONS = 64;
// Opened before the first request is due: opened on demand, the first requests would each wait for a TLS
// handshake, and the handshakes for one another, a pile-up the warm-up would have to absorb.
const INITIAL_CONNECTIONS = 8;
const requestBytes = Buffer.concat([
  Buffer.from(
    `POST ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n`,
  ),
  payload,
]);

/** Milliseconds on a clock both threads share (performance.now() counts from each thread's own start). */
const now = () => performance.timeOrigin + performance.now();
// Time for the initial connections' handshakes.
const start = now() + 500;
const dueTime = (index: number) => start + index * intervalMs;

const latencies: number[] = [];
const sendLags: number[] = [];
const failures = new Map<string, number>();
let failed = 0;
let finished = 0;
/** Requests due while every connection was busy, oldest first. */
const waiting: number[] = [];
const idle: Connection[] = [];
let connections = 0;
let peakConnections = 0;

class Connection {
  private readonly socket: TLSSocket;
  private index = -1;
  private sentAt = 0;
  private received: Buffer[] = [];
  private receivedBytes = 0;
  private expectedBytes = -1;
  private status = 0;
  private closed = false;

  constructor(onReady: (connection: Connection) => void) {
    this.socket = connect({ host: target.hostname, port: Number(target.port), rejectUnauthorized: false });
    this.socket.setNoDelay(true);
    this.socket.once('secureConnect', () => onReady(this));
    this.socket.on('data', (chunk: Buffer) => this.read(chunk));
    this.socket.on('error', (error) => this.lost(error.message));
    this.socket.on('close', () => this.lost('connection closed'));
  }

  send(index: number): void {
    this.index = index;
    this.sentAt = now();
    this.socket.write(requestBytes);
  }

  private read(chunk: Buffer): void {
    // A connection opened for a request that another connection took, and left unused for the server's headers
    // timeout, is answered 408 and closed by the server: not an answer to any request of ours.
    if (this.index < 0) {
      this.socket.destroy();
      return;
    }
    this.received.push(chunk);
    this.receivedBytes += chunk.length;
    if (this.expectedBytes < 0) {
      const buffered = this.received.length === 1 ? chunk : Buffer.concat(this.received);
      const headEnd = buffered.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = buffered.subarray(0, headEnd).toString('latin1');
      this.status = Number(head.slice(9, 12));
      this.expectedBytes = headEnd + 4 + Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    }
    if (this.receivedBytes < this.expectedBytes) return;
    const { index, status, sentAt } = this;
    this.index = -1;
    this.received = [];
    this.receivedBytes = 0;
    this.expectedBytes = -1;
    if (status !== 200) fail(`HTTP ${status}`);
    else succeed(index, sentAt);
    release(this);
  }

  private lost(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    connections--;
    if (this.index >= 0) fail(reason);
    this.index = -1;
    const at = idle.indexOf(this);
    if (at >= 0) idle.splice(at, 1);
  }
}

function release(connection: Connection): void {
  const next = waiting.shift();
  if (next === undefined) idle.push(connection);
  else connection.send(next);
}

function due(index: number): void {
  const connection = idle.pop();
  if (connection) return connection.send(index);
  waiting.push(index);
  if (connections < MAX_CONNECTIONS) {
    connections++;
    peakConnections = Math.max(peakConnections, connections);
    new Connection(release);
  }
}

function succeed(index: number, sentAt: number): void {
  if (index >= warmUp) {
    const scheduled = dueTime(index);
    latencies.push(now() - scheduled);
    sendLags.push(sentAt - scheduled);
  }
  done();
}

function fail(reason: string): void {
  failed++;
  failures.set(reason, (failures.get(reason) ?? 0) + 1);
  done();
}

function done(): void {
  finished++;
  if (finished === total) report();
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

function report(): void {
  const sorted = latencies.sort((x, y) => x - y);
  const lags = sendLags.sort((x, y) => x - y);
  const result = {
    requests: sorted.length,
    failed,
    failures: Object.fromEntries(failures),
    peakConnections,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted[sorted.length - 1],
    // How late requests went out, waiting for the clock, the client's event loop or a free connection: when this
    // is near the latency itself, the client, not the server, made the tail.
    sendLagP99: percentile(lags, 99),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const CLOCK = `
const { parentPort, workerData } = require('node:worker_threads');
const { start, intervalMs, total } = workerData;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
for (let index = 0; index < total; index++) {
  const wait = start + index * intervalMs - (performance.timeOrigin + performance.now());
  if (wait > 0) Atomics.wait(sleeper, 0, 0, wait);
  parentPort.postMessage(index);
}
`;
for (let i = 0; i < INITIAL_CONNECTIONS; i++) {
  connections++;
  new Connection(release);
}
peakConnections = connections;
new Worker(CLOCK, { eval: true, workerData: { start, intervalMs, total } }).on('message', due);
