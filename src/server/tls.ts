// The serving certificate: tls.crt and tls.key from --cert-dir (a mounted Secret in a cluster), or, when the
// directory holds neither, a CA and a certificate it signs generated there, so `npm start` works on a fresh clone.
// The files are watched, so a renewed certificate is served without a restart.

import { X509Certificate } from 'node:crypto';
import { existsSync, type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { CA_CERT_FILE, SERVING_CERT_FILE, SERVING_KEY_FILE, writeCertificateFiles } from '../certs/files.js';
import { generateCertificates, serviceDnsNames } from '../certs/generate.js';
import { TlsError } from '../errors.js';

export interface ServingCertificate {
  key: string;
  cert: string;
}

export interface ServingCertificateOptions {
  certDir: string;
  /** The names a generated certificate is valid for (see servingNames). */
  names: string[];
  logger: Logger;
}

/** The webhook's Service is sidecar-injector, or sidecar-injector-<revision> for a named revision. */
export function serviceName(revision: string): string {
  return revision ? `sidecar-injector-${revision}` : 'sidecar-injector';
}

/** Local calls (curl, tests) and the in-cluster Service names the API server dials. */
export function servingNames(revision: string, serviceNamespace: string): string[] {
  return ['localhost', '127.0.0.1', ...serviceDnsNames(serviceName(revision), serviceNamespace)];
}

const errorCode = (error: unknown) => (error as NodeJS.ErrnoException).code ?? (error as Error).message;

export async function loadOrCreateServingCertificate(options: ServingCertificateOptions): Promise<ServingCertificate> {
  const { certDir, logger } = options;
  const certPath = join(certDir, SERVING_CERT_FILE);
  const keyPath = join(certDir, SERVING_KEY_FILE);
  const caPath = resolve(certDir, CA_CERT_FILE);
  const hasCert = existsSync(certPath);
  const hasKey = existsSync(keyPath);

  if (!hasCert && !hasKey) {
    const bundle = await generateCertificates(options.names);
    try {
      await writeCertificateFiles(certDir, bundle);
    } catch (error) {
      const hint =
        errorCode(error) === 'EEXIST'
          ? ' (it holds a CA but no serving certificate: remove the CA files, or write all four with `sidecar-injector certs --force`)'
          : '';
      throw new TlsError(`cannot write certificates into ${certDir}: ${errorCode(error)}${hint}`);
    }
    logger.info({ ca: caPath, names: options.names }, 'generated a CA and a serving certificate; clients must trust the CA');
    return { key: bundle.key, cert: bundle.cert };
  }
  if (!hasCert || !hasKey) {
    throw new TlsError(`${certDir} holds ${hasCert ? SERVING_CERT_FILE : SERVING_KEY_FILE} without ${hasCert ? SERVING_KEY_FILE : SERVING_CERT_FILE}`);
  }

  let serving: ServingCertificate;
  try {
    serving = { cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8') };
  } catch (error) {
    throw new TlsError(`cannot read the serving certificate in ${certDir}: ${errorCode(error)}`);
  }
  let validTo: string;
  try {
    // Fails here, with the file names, rather than as a bare OpenSSL error when the server starts.
    createSecureContext(serving);
    validTo = new X509Certificate(serving.cert).validTo;
  } catch (error) {
    throw new TlsError(`${certPath} and ${keyPath} are not a usable certificate and key: ${(error as Error).message}`);
  }
  logger.info({ cert: resolve(certPath), ca: existsSync(caPath) ? caPath : undefined, validTo }, 'loaded the serving certificate');
  return serving;
}

export interface CertificateFileWatchOptions {
  certDir: string;
  /** What is being served now: a reload that finds the same files changes nothing. */
  current: ServingCertificate;
  /** Called with a new, usable certificate and key. */
  onChange(certificate: ServingCertificate): void;
  /** How often the files are read regardless of change events. */
  pollIntervalMs: number;
  logger: Logger;
}

/**
 * Kubernetes updates a mounted Secret by writing a new hidden directory and swapping the `..data` symlink to it,
 * and a burst of events follows: reloading once, shortly after the last, reads the files as they settled.
 */
const RELOAD_SETTLE_MS = 100;

/**
 * Watches tls.crt and tls.key in `certDir` (cert-manager's renewals, a replaced Secret) and reports a changed,
 * usable pair. The directory is watched, not the files: the kubelet's symlink swap replaces the files without
 * writing them, so a watch on a file would keep watching the old one. Polling backs the watch up where events
 * never come (some file systems; files that are symlinks into another directory). A pair that is not usable (a
 * half-written copy, a key that does not match yet) is ignored until the next event or poll.
 */
export function watchCertificateFiles(options: CertificateFileWatchOptions): { close(): void } {
  const { certDir, logger } = options;
  let current = options.current;
  let settleTimer: NodeJS.Timeout | undefined;

  async function reload(): Promise<void> {
    let next: ServingCertificate;
    try {
      next = {
        cert: await readFile(join(certDir, SERVING_CERT_FILE), 'utf8'),
        key: await readFile(join(certDir, SERVING_KEY_FILE), 'utf8'),
      };
    } catch (error) {
      const err = { message: errorCode(error) };
      logger.warn({ certDir, err }, 'cannot read the serving certificate files; serving the current ones');
      return;
    }
    if (next.cert === current.cert && next.key === current.key) return;
    try {
      createSecureContext(next);
    } catch (error) {
      const err = { message: (error as Error).message };
      logger.warn({ certDir, err }, 'the serving certificate files are not a usable pair yet; serving the current ones');
      return;
    }
    current = next;
    options.onChange(next);
    const { validTo } = new X509Certificate(next.cert);
    logger.info({ cert: resolve(certDir, SERVING_CERT_FILE), validTo }, 'reloaded the serving certificate');
  }

  // One reload at a time: a poll and an event at once would otherwise both report the same change.
  let reloads = Promise.resolve();
  const reloadInTurn = () => {
    reloads = reloads
      .then(reload)
      .catch((error: unknown) => logger.error({ err: error }, 'reloading the serving certificate failed'));
  };
  const scheduleReload = () => {
    clearTimeout(settleTimer);
    settleTimer = setTimeout(reloadInTurn, RELOAD_SETTLE_MS);
  };
  const warnNoWatch = (error: Error) =>
    logger.warn({ certDir, err: { message: error.message } }, 'cannot watch the certificate directory; polling it only');
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(certDir, scheduleReload);
    watcher.on('error', warnNoWatch);
  } catch (error) {
    // Out of inotify watches, for one.
    warnNoWatch(error as Error);
  }
  const poll = setInterval(reloadInTurn, options.pollIntervalMs);
  return {
    close() {
      watcher?.close();
      clearInterval(poll);
      clearTimeout(settleTimer);
    },
  };
}
