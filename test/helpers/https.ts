// The webhook on a real HTTPS socket (127.0.0.1, port 0) with a generated CA, and a client that verifies the
// server against that CA. Every server test goes through these, so what they prove holds on the wire.

import { Agent, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import pino from 'pino';
import { type CertificateBundle, generateCertificates } from '../../src/certs/generate.js';
import { type InjectorConfig, resolveConfig } from '../../src/config/schema.js';
import type { BootstrapValidation } from '../../src/core/templates/template.js';
import { type NamespaceLabels, staticNamespaceLabels } from '../../src/kube/namespace-labels.js';
import { buildApp, type InjectorApp } from '../../src/server/app.js';

let certificates: Promise<CertificateBundle> | undefined;

/** One CA and serving certificate per test file: RSA key generation takes a noticeable part of a second. */
export function testCertificates(): Promise<CertificateBundle> {
  certificates ??= generateCertificates(['localhost', '127.0.0.1']);
  return certificates;
}

export type LogLine = Record<string, unknown> & { msg: string; level: number };

export interface TestServer {
  app: InjectorApp;
  port: number;
  ca: string;
  /** Every line the server logged, parsed. */
  logs: LogLine[];
  close(): Promise<void>;
}

export interface TestServerOptions {
  validateBootstrap?: BootstrapValidation;
  config?: InjectorConfig;
  /** Defaults to the config's static `namespaces`. */
  namespaceLabels?: NamespaceLabels;
}

export async function startServer(options: TestServerOptions = {}): Promise<TestServer> {
  const bundle = await testCertificates();
  const logs: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const config = options.config ?? resolveConfig(null);
  const app = buildApp({
    tls: { key: bundle.key, cert: bundle.cert },
    config,
    namespaceLabels: options.namespaceLabels ?? staticNamespaceLabels(config.namespaces),
    logger,
    validateBootstrap: options.validateBootstrap,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { app, port, ca: bundle.caCert, logs, close: () => app.close() };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export const json = <T = Record<string, unknown>>(answer: Answer): T => JSON.parse(answer.text) as T;

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  agent?: Agent;
}

/** One HTTPS request, verified against the test CA; a fresh connection unless an agent is given. */
export function send(server: TestServer, path: string, options: RequestOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path,
        method: options.method ?? 'GET',
        ca: server.ca,
        headers: options.headers,
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

export const JSON_CONTENT_TYPE = { 'content-type': 'application/json' };

/** POST a value as JSON to /inject (or another path). */
export function postJson(server: TestServer, body: unknown, path = '/inject', agent?: Agent): Promise<Answer> {
  return send(server, path, { method: 'POST', headers: JSON_CONTENT_TYPE, body: JSON.stringify(body), agent });
}

/** A raw TLS connection verified against the test CA, for requests node:https will not send as we need. */
export async function rawTls(server: TestServer): Promise<TLSSocket> {
  const socket = connect({ host: '127.0.0.1', port: server.port, ca: server.ca });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** Reads one HTTP/1.1 response with a Content-Length from a raw socket; fails if the socket ends before it. */
export function readRawResponse(socket: TLSSocket): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const headEnd = buffered.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = buffered.subarray(0, headEnd).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffered.length < headEnd + 4 + length) return;
      socket.off('data', onData);
      const body = buffered.subarray(headEnd + 4, headEnd + 4 + length).toString('utf8');
      resolve({ status: Number(head.split(' ')[1]), head, body });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('end', () => reject(new Error(`connection ended before a full response: ${buffered.toString('latin1')}`)));
  });
}

/** /healthz still answers: the server survived whatever came before. */
export async function expectHealthy(server: TestServer): Promise<void> {
  const answer = await send(server, '/healthz');
  if (answer.status !== 200) throw new Error(`/healthz answered ${answer.status}: ${answer.text}`);
}
