// The serving certificate: tls.crt and tls.key from --cert-dir (a mounted Secret in a cluster), or, when the
// directory holds neither, a CA and a certificate it signs generated there, so `npm start` works on a fresh clone.

import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
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
