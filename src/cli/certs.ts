// `sidecar-injector certs`: a CA and a serving certificate it signs, written as `serve --cert-dir` and a
// Kubernetes TLS Secret expect them. Existing files are kept unless --force: replacing a CA silently would break
// every webhook configuration whose caBundle still holds the old one.

import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { CERTIFICATE_FILES, writeCertificateFiles } from '../certs/files.js';
import { generateCertificates } from '../certs/generate.js';
import { TlsError, UsageError } from '../errors.js';
import { parseFlags } from './args.js';
import { writeStdout } from './output.js';

// A DNS name as a certificate SAN: labels of letters, digits and inner hyphens; a leading "*." wildcard allowed.
const DNS_NAME = /^(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/i;

export async function certsCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, { values: ['out'], lists: ['dns'], switches: ['force'] });
  if (flags.positional.length > 0) {
    throw new UsageError(`unexpected argument "${flags.positional[0]}" (give each name with its own --dns)`);
  }
  const dir = flags.values.get('out');
  if (dir === undefined) throw new UsageError('--out DIR is required');
  const names = flags.lists.get('dns') ?? [];
  if (names.length === 0) throw new UsageError('at least one --dns NAME (a DNS name or an IP address) is required');
  for (const name of names) {
    // generate.ts takes anything made of digits and dots for an IP address, so such a name must be a valid one.
    const valid = isIP(name) !== 0 || (!/^[0-9.]+$/.test(name) && DNS_NAME.test(name));
    if (!valid) throw new UsageError(`--dns ${JSON.stringify(name)} is neither a DNS name nor an IP address`);
  }

  const paths = CERTIFICATE_FILES.map((file) => join(dir, file.name));
  const force = flags.switches.has('force');
  // Checked before anything is written, so a refusal never leaves a new CA next to an old key.
  const existing = force ? [] : paths.filter((path) => existsSync(path));
  if (existing.length > 0) throw new UsageError(`${existing.join(', ')} already exist; use --force to replace them`);

  const bundle = await generateCertificates(names);
  try {
    // Removed rather than overwritten, so a replaced key file gets its 0600 mode back.
    if (force) await Promise.all(paths.map((path) => rm(path, { force: true })));
    await writeCertificateFiles(dir, bundle);
  } catch (error) {
    const { code, path } = error as NodeJS.ErrnoException;
    throw new TlsError(`cannot write ${path ?? dir}: ${code ?? (error as Error).message}`);
  }
  writeStdout(`wrote ${paths.join(', ')} for ${names.join(', ')}\n`);
}
