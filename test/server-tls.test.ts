// The serving certificate: generated into an empty --cert-dir with a CA beside it (SANs for local calls and the
// in-cluster Service names), loaded as is on the next start, refused with a clear error when half there or
// unusable; and on the wire, TLS 1.2 or newer only.

import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/schema.js';
import { TlsError } from '../src/errors.js';
import { staticNamespaceLabels } from '../src/kube/namespace-labels.js';
import { buildApp, type InjectorApp } from '../src/server/app.js';
import { loadOrCreateServingCertificate, servingNames } from '../src/server/tls.js';

const logs: Record<string, unknown>[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
const names = servingNames('canary', 'mesh');
const dirs: string[] = [];
const freshDir = () => {
  dirs.push(mkdtempSync(join(tmpdir(), 'sidecar-injector-tls-')));
  return dirs.at(-1) as string;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('the names a generated certificate is valid for', () => {
  it('are localhost, 127.0.0.1 and the revision Service in its namespace', () => {
    expect(names).toEqual([
      'localhost',
      '127.0.0.1',
      'sidecar-injector-canary',
      'sidecar-injector-canary.mesh',
      'sidecar-injector-canary.mesh.svc',
      'sidecar-injector-canary.mesh.svc.cluster.local',
    ]);
    expect(servingNames('', 'istio-system')).toContain('sidecar-injector.istio-system.svc');
  });
});

describe('an empty --cert-dir', () => {
  const dir = freshDir();
  let generated: { key: string; cert: string };
  beforeAll(async () => {
    generated = await loadOrCreateServingCertificate({ certDir: dir, names, logger });
  });

  it('gets a CA and a serving certificate it signs, for every name', () => {
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
    const cert = new X509Certificate(readFileSync(join(dir, 'tls.crt')));
    expect(readFileSync(join(dir, 'tls.crt'), 'utf8')).toBe(generated.cert);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    for (const name of names.filter((n) => n !== '127.0.0.1')) expect(cert.checkHost(name), name).toBe(name);
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });

  it('keeps the keys readable by their owner only', () => {
    expect(statSync(join(dir, 'tls.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'ca.key')).mode & 0o777).toBe(0o600);
  });

  it('logs where the CA is', () => {
    expect(logs).toContainEqual(expect.objectContaining({ ca: join(dir, 'ca.crt'), msg: expect.stringContaining('trust the CA') }));
  });

  it('is loaded as is on the next start', async () => {
    const again = await loadOrCreateServingCertificate({ certDir: dir, names, logger });
    expect(again).toEqual(generated);
    expect(logs.at(-1)).toMatchObject({ msg: 'loaded the serving certificate', ca: join(dir, 'ca.crt') });
  });
});

describe('a --cert-dir that cannot be used', () => {
  it('holding tls.crt without tls.key is refused', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'tls.crt'), 'x');
    await expect(loadOrCreateServingCertificate({ certDir: dir, names, logger })).rejects.toThrow(
      new TlsError(`${dir} holds tls.crt without tls.key`),
    );
  });

  it('holding a CA but no serving certificate is refused rather than the CA replaced', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'ca.crt'), 'old CA');
    await expect(loadOrCreateServingCertificate({ certDir: dir, names, logger })).rejects.toThrow(/EEXIST.*certs --force/);
    expect(readFileSync(join(dir, 'ca.crt'), 'utf8')).toBe('old CA');
  });

  it('holding files that are not a certificate and key is refused, naming them', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'tls.crt'), 'not a certificate');
    writeFileSync(join(dir, 'tls.key'), 'not a key');
    await expect(loadOrCreateServingCertificate({ certDir: dir, names, logger })).rejects.toThrow(
      /tls\.crt and .*tls\.key are not a usable certificate and key/,
    );
  });
});

describe('the server on the wire', () => {
  const dir = freshDir();
  let app: InjectorApp;
  let port: number;
  let ca: string;
  beforeAll(async () => {
    const tls = await loadOrCreateServingCertificate({ certDir: dir, names, logger });
    ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const config = resolveConfig({ revision: 'canary' });
    app = buildApp({ tls, config, namespaceLabels: staticNamespaceLabels({}), logger });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as { port: number }).port;
  });
  afterAll(() => app.close());

  const handshake = (options: { servername?: string; minVersion?: 'TLSv1' | 'TLSv1.2'; maxVersion?: 'TLSv1.1' | 'TLSv1.2'; ciphers?: string }) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca, ...options }, () => {
        resolve(socket.getProtocol() ?? '');
        socket.end();
      });
      socket.on('error', reject);
    });

  it('is trusted through the CA under its in-cluster Service name', async () => {
    expect(await handshake({ servername: 'sidecar-injector-canary.mesh.svc' })).toMatch(/^TLSv1\.[23]$/);
  });

  it('speaks TLS 1.2 to a client that offers no more', async () => {
    expect(await handshake({ servername: 'localhost', maxVersion: 'TLSv1.2' })).toBe('TLSv1.2');
  });

  it('refuses TLS 1.1, with the server alerting on the protocol version', async () => {
    // SECLEVEL=0 lets this client offer TLS 1.1 at all (it connects to a server that allows it); the alert it gets
    // is the server's refusal.
    await expect(
      handshake({ servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
    ).rejects.toMatchObject({ code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
  });
});
