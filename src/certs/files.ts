// The certificate files on disk, named as in a Kubernetes TLS Secret (tls.crt, tls.key) plus the CA beside them.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CertificateBundle } from './generate.js';

export const SERVING_CERT_FILE = 'tls.crt';
export const SERVING_KEY_FILE = 'tls.key';
export const CA_CERT_FILE = 'ca.crt';

// Keys are readable by their owner only.
export const CERTIFICATE_FILES: readonly { name: string; field: keyof CertificateBundle; mode: number }[] = [
  { name: CA_CERT_FILE, field: 'caCert', mode: 0o644 },
  { name: 'ca.key', field: 'caKey', mode: 0o600 },
  { name: SERVING_CERT_FILE, field: 'cert', mode: 0o644 },
  { name: SERVING_KEY_FILE, field: 'key', mode: 0o600 },
];

/**
 * Writes the bundle into `dir` (created if needed). Never replaces a file ("wx"): a CA replaced silently would
 * break every webhook configuration whose caBundle still holds the old one. Throws the file system's error.
 */
export async function writeCertificateFiles(dir: string, bundle: CertificateBundle): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const file of CERTIFICATE_FILES) {
    await writeFile(join(dir, file.name), bundle[file.field], { mode: file.mode, flag: 'wx' });
  }
}
