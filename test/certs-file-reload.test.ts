// Certificates mounted as files (cert-manager's Secret, one the user provides) are reloaded without a restart. The
// directory is laid out and updated the way the kubelet's atomic writer does it: the files are symlinks through
// `..data`, a symlink to a timestamped directory, and an update writes a new directory and renames a new `..data`
// over the old one, so no reader ever sees half of an update.

import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type CertificateBundle, generateCertificates } from '../src/certs/generate.js';
import { resolveConfig } from '../src/config/schema.js';
import { staticNamespaceLabels } from '../src/kube/namespace-labels.js';
import { buildApp, replaceServingCertificate } from '../src/server/app.js';
import { loadOrCreateServingCertificate, type ServingCertificate, watchCertificateFiles } from '../src/server/tls.js';
import type { LogLine } from './helpers/https.js';
import { handshake, until } from './helpers/self-managed.js';

/** Longer than any test: only the directory watch can notice a change in time. */
const NO_POLL_MS = 60_000;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-injector-reload-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let generation = 0;

/**
 * Writes tls.crt and tls.key as the kubelet does: a new timestamped directory, a `..data_tmp` symlink to it
 * renamed over `..data`, then the old directory removed.
 */
function atomicWrite(certDir: string, files: { cert: string; key: string }): void {
  const data = join(certDir, '..data');
  const previous = existsSync(data) ? readlinkSync(data) : undefined;
  const version = `..2026_01_01_00_00_0${++generation}`;
  mkdirSync(join(certDir, version));
  writeFileSync(join(certDir, version, 'tls.crt'), files.cert);
  writeFileSync(join(certDir, version, 'tls.key'), files.key);
  symlinkSync(version, join(certDir, '..data_tmp'));
  renameSync(join(certDir, '..data_tmp'), data);
  if (previous) rmSync(join(certDir, previous), { recursive: true });
}

function mountedSecret(files: { cert: string; key: string }): string {
  const certDir = scratchDir();
  atomicWrite(certDir, files);
  symlinkSync('..data/tls.crt', join(certDir, 'tls.crt'));
  symlinkSync('..data/tls.key', join(certDir, 'tls.key'));
  return certDir;
}

async function serveFrom(certDir: string, pollIntervalMs: number) {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const tls = await loadOrCreateServingCertificate({ certDir, names: ['localhost'], logger });
  const app = buildApp({ tls, config: resolveConfig(null), namespaceLabels: staticNamespaceLabels({}), logger });
  const onChange = (next: ServingCertificate) => replaceServingCertificate(app, next);
  const watcher = watchCertificateFiles({ certDir, current: tls, onChange, pollIntervalMs, logger });
  await app.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(async () => {
    watcher.close();
    await app.close();
  });
  return { port: (app.server.address() as AddressInfo).port, logs };
}

const fingerprintOf = (bundle: CertificateBundle) => new X509Certificate(bundle.cert).fingerprint256;
const generate = () => generateCertificates(['localhost']);
const shown = (port: number, bundle: CertificateBundle) => handshake(port, bundle.caCert, 'localhost');
/** Until new connections get `bundle`'s certificate; a reload is expected well within this. */
const untilServed = (port: number, bundle: CertificateBundle) =>
  until(async () => (await shown(port, bundle)).fingerprint === fingerprintOf(bundle), 'the renewed certificate', 2_000);

describe('certificate files updated as the kubelet updates a mounted Secret', () => {
  it('are served to new connections without a restart, as soon as `..data` moves', async () => {
    const [first, renewed] = await Promise.all([generate(), generate()]);
    const certDir = mountedSecret(first);
    const server = await serveFrom(certDir, NO_POLL_MS);
    expect(await shown(server.port, first)).toMatchObject({ trusted: true, fingerprint: fingerprintOf(first) });

    atomicWrite(certDir, renewed);
    await untilServed(server.port, renewed);
    expect(await shown(server.port, renewed)).toMatchObject({ trusted: true });
    expect(server.logs).toContainEqual(expect.objectContaining({ msg: 'reloaded the serving certificate' }));
  });

  it('are not served while the key does not match the certificate, and are once it does', async () => {
    const [first, renewed] = await Promise.all([generate(), generate()]);
    const certDir = mountedSecret(first);
    const server = await serveFrom(certDir, NO_POLL_MS);

    // A copy made file by file, not atomically: the certificate is there before its key.
    atomicWrite(certDir, { cert: renewed.cert, key: first.key });
    await until(() => server.logs.some((line) => line.msg.includes('not a usable pair')), 'the mismatch to be noticed', 2_000);
    expect((await shown(server.port, first)).fingerprint).toBe(fingerprintOf(first));

    atomicWrite(certDir, renewed);
    await untilServed(server.port, renewed);
  });
});

describe('certificate files whose changes raise no event in the directory', () => {
  it('are picked up by the periodic check', async () => {
    const [first, renewed] = await Promise.all([generate(), generate()]);
    // The files are symlinks into another directory, whose changes a watch on the certificate directory never sees.
    const elsewhere = scratchDir();
    writeFileSync(join(elsewhere, 'tls.crt'), first.cert);
    writeFileSync(join(elsewhere, 'tls.key'), first.key);
    const certDir = scratchDir();
    symlinkSync(join(elsewhere, 'tls.crt'), join(certDir, 'tls.crt'));
    symlinkSync(join(elsewhere, 'tls.key'), join(certDir, 'tls.key'));
    const server = await serveFrom(certDir, 200);

    writeFileSync(join(elsewhere, 'tls.key.new'), renewed.key);
    writeFileSync(join(elsewhere, 'tls.crt.new'), renewed.cert);
    renameSync(join(elsewhere, 'tls.key.new'), join(elsewhere, 'tls.key'));
    renameSync(join(elsewhere, 'tls.crt.new'), join(elsewhere, 'tls.crt'));
    await untilServed(server.port, renewed);
  });
});
