// Concurrent clients for the fault tests: workers that post real AdmissionReviews without pause, each review with
// its own uid, and record how every one of them ended. A fault test starts the load, causes its fault, stops the
// load and judges the record: a review failed when it got no answer, an HTTP error, or an answer that is not an
// AdmissionReview allowing its own uid.
//
// Also what those tests need around a real `serve` process: one started with its own certificates, and its
// resident memory and open sockets read from /proc.

import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { JsonObject } from '../../src/core/json.js';
import { admissionReview } from './admission.js';
import { podWith } from './pods.js';
import { type ServeProcess, startServe } from './serve-process.js';

export interface LoadTarget {
  port: number;
  /**
   * The CA bundle to trust. A function is read again for every new connection, as the API server reads the
   * webhook configuration's caBundle.
   */
  ca: string | (() => string);
  /** The name the certificate is checked against; the IP dialled when not set. */
  servername?: string;
}

/** 'fresh': every review on a new TLS connection. 'keep-alive': each worker reuses one connection while it can. */
export type ConnectionMode = 'fresh' | 'keep-alive';

export interface LoadOptions {
  workers: number;
  connections: ConnectionMode;
  /** What the n-th review of a worker is about; by default an opted-in pod in namespace `team`. */
  reviewOf?: (sequence: number) => { namespace: string; pod: JsonObject };
}

export interface ReviewOutcome {
  uid: string;
  namespace: string;
  /** performance.now() when the request was started and when it ended, answered or not. */
  sentAt: number;
  endedAt: number;
  /** The HTTP status, once the answer's head arrived. */
  status?: number;
  /** Whether the AdmissionReview answer carried a patch: the pod was injected. */
  patched?: boolean;
  /** What went wrong: the network error's code, or what is wrong with the answer. */
  error?: string;
  /** The TLS connection was established: the review could reach the server. */
  connected: boolean;
  /** The review went out on a connection kept alive from an earlier one. */
  reusedConnection: boolean;
  /** SHA-256 fingerprint of the certificate the connection was opened with. */
  certificate?: string;
}

/** A review that does not count as answered. */
export const failed = (outcome: ReviewOutcome): boolean => outcome.error !== undefined || outcome.status !== 200;

const DEFAULT_REVIEW = { namespace: 'team', pod: podWith({ 'sidecar.istio.io/inject': 'true' }) };
/**
 * Longer than the server may take over any request (its 10 s request timeout): a review still unanswered then
 * is recorded as failed, rather than hanging the test.
 */
const ANSWER_TIMEOUT_MS = 15_000;
/** After a failure, so that a worker facing a closed port does not spin. */
const PAUSE_AFTER_FAILURE_MS = 20;

let runs = 0;

export class Load {
  readonly outcomes: ReviewOutcome[] = [];
  private running = true;
  private readonly workers: Promise<void>[];
  private readonly run = `load${++runs}`;

  constructor(
    private readonly target: LoadTarget,
    private readonly options: LoadOptions,
  ) {
    this.workers = Array.from({ length: options.workers }, (_, worker) => this.work(worker));
  }

  /** Lets every review in flight end, and returns them all. */
  async stop(): Promise<ReviewOutcome[]> {
    this.running = false;
    await Promise.all(this.workers);
    return this.outcomes;
  }

  private async work(worker: number): Promise<void> {
    const keepAlive = this.options.connections === 'keep-alive';
    // One agent per CA bundle, as the API server builds a new client when a webhook's caBundle changes; the old
    // one's connection is closed once its last review is answered.
    let agent: Agent | undefined;
    let agentCa: string | undefined;
    for (let sequence = 0; this.running; sequence++) {
      const ca = typeof this.target.ca === 'function' ? this.target.ca() : this.target.ca;
      if (keepAlive && agentCa !== ca) {
        agent?.destroy();
        agent = new Agent({ keepAlive: true, maxSockets: 1 });
        agentCa = ca;
      }
      const { namespace, pod } = this.options.reviewOf?.(sequence) ?? DEFAULT_REVIEW;
      const outcome = await this.review(`${this.run}-${worker}-${sequence}`, namespace, pod, ca, agent);
      this.outcomes.push(outcome);
      if (failed(outcome)) await new Promise((resolve) => setTimeout(resolve, PAUSE_AFTER_FAILURE_MS));
      else await new Promise((resolve) => setImmediate(resolve));
    }
    agent?.destroy();
  }

  private review(uid: string, namespace: string, pod: JsonObject, ca: string, agent?: Agent): Promise<ReviewOutcome> {
    const body = JSON.stringify(admissionReview(pod, { uid, namespace }));
    const sentAt = performance.now();
    return new Promise((resolve) => {
      let status: number | undefined;
      let certificate: string | undefined;
      let connected = false;
      const end = (fields: Partial<ReviewOutcome>) => {
        clearTimeout(timer);
        const endedAt = performance.now();
        const reusedConnection = req.reusedSocket;
        resolve({ uid, namespace, sentAt, endedAt, status, certificate, connected, reusedConnection, ...fields });
      };
      const req = request(
        {
          host: '127.0.0.1',
          port: this.target.port,
          path: '/inject',
          method: 'POST',
          ca,
          servername: this.target.servername,
          headers: { 'content-type': 'application/json' },
          agent: agent ?? false,
        },
        (res) => {
          status = res.statusCode;
          certificate = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (error: NodeJS.ErrnoException) => end({ error: error.code ?? error.message }));
          res.on('end', () => end(judge(uid, status, Buffer.concat(chunks).toString('utf8'))));
        },
      );
      req.on('socket', (socket: TLSSocket) => {
        if (req.reusedSocket) connected = true;
        else socket.once('secureConnect', () => (connected = true));
      });
      const giveUp = () => req.destroy(new Error(`no answer within ${ANSWER_TIMEOUT_MS} ms`));
      const timer = setTimeout(giveUp, ANSWER_TIMEOUT_MS);
      req.on('error', (error: NodeJS.ErrnoException) => end({ error: error.code ?? error.message }));
      req.end(body);
    });
  }
}

function judge(uid: string, status: number | undefined, text: string): Partial<ReviewOutcome> {
  if (status !== 200) return {};
  let response: { uid?: unknown; allowed?: unknown; patch?: unknown } | undefined;
  try {
    response = (JSON.parse(text) as { response?: typeof response }).response;
  } catch {
    return { error: 'the answer is not JSON' };
  }
  if (response?.uid !== uid) return { error: `the answer is for uid ${String(response?.uid)}` };
  if (response.allowed !== true) return { error: 'the answer does not allow the pod' };
  return { patched: response.patch !== undefined };
}

export function startLoad(target: LoadTarget, options: LoadOptions): Load {
  return new Load(target, options);
}

/** The p-th percentile (0–100) of the values, by nearest rank. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** How many outcomes of each kind: `200`, `413`, `ECONNREFUSED`, ... for a readable failure message. */
export function tally(outcomes: ReviewOutcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) {
    const kind = outcome.error ?? String(outcome.status);
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

// ---- a real `serve` process ------------------------------------------------------------------------------------

export interface ServeTarget extends LoadTarget {
  serving: ServeProcess;
  ca: string;
  /** Kills the process if it still runs, and removes its certificates. */
  cleanup(): void;
}

/** `serve` with a CA and serving certificate generated into a directory of its own. */
export async function startServeWithCertificates(
  flags: string[] = [],
  env: Record<string, string | undefined> = {},
): Promise<ServeTarget> {
  const certDir = mkdtempSync(join(tmpdir(), 'sidecar-injector-faults-'));
  try {
    const serving = await startServe(['--cert-dir', certDir, ...flags], env);
    return {
      serving,
      port: serving.port,
      ca: readFileSync(join(certDir, 'ca.crt'), 'utf8'),
      cleanup() {
        if (serving.child.exitCode === null && serving.child.signalCode === null) serving.child.kill('SIGKILL');
        rmSync(certDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(certDir, { recursive: true, force: true });
    throw error;
  }
}

const statusField = (pid: number, field: string): number => {
  const kilobytes = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kilobytes === undefined) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(kilobytes) * 1024;
};

/** The process's resident memory now, in bytes. */
export const residentBytes = (pid: number): number => statusField(pid, 'VmRSS');

/** The most the process's resident memory reached since it started or since resetPeakResident, in bytes. */
export const peakResidentBytes = (pid: number): number => statusField(pid, 'VmHWM');

/** Starts measuring the peak afresh from the current resident memory (Linux clear_refs). */
export function resetPeakResident(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

export const MIB = 1024 * 1024;

/** How many sockets the process holds open: connections, its listener, and its stdio pipes. */
export function openSockets(pid: number): number {
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      // Closed between the listing and the look.
    }
  }
  return sockets;
}
