// `sidecar-injector certs`: a CA and a serving certificate that verify as a chain with the SANs asked for, keys
// readable by their owner only, and existing files never replaced without --force.

import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, errorLine, runCli } from './helpers/cli.js';

const FILES = ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'];
const newDir = () => join(mkdtempSync(join(tmpdir(), 'certs-')), 'out');
const read = (dir: string) => Object.fromEntries(FILES.map((name) => [name, readFileSync(join(dir, name), 'utf8')]));
const modeOf = (path: string) => statSync(path).mode & 0o777;

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('certs', () => {
  const dir = newDir();
  let written: CliResult;
  beforeAll(async () => {
    written = await runCli('certs', '--out', dir, '--dns', 'injector.istio-system.svc', '--dns', 'localhost', '--dns', '127.0.0.1');
  });

  it('writes ca.crt, ca.key, tls.crt and tls.key, the keys with mode 0600', () => {
    expect(written).toMatchObject({ code: 0, stderr: '' });
    expect(FILES.map((name) => [name, modeOf(join(dir, name))])).toEqual([
      ['ca.crt', 0o644],
      ['ca.key', 0o600],
      ['tls.crt', 0o644],
      ['tls.key', 0o600],
    ]);
  });

  it('writes a serving certificate the CA signed, for the names asked for, with its key', () => {
    const files = read(dir);
    const ca = new X509Certificate(files['ca.crt'] as string);
    const leaf = new X509Certificate(files['tls.crt'] as string);
    expect(ca.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(leaf.subjectAltName?.split(', ')).toEqual(['DNS:injector.istio-system.svc', 'DNS:localhost', 'IP Address:127.0.0.1']);
    expect(leaf.checkPrivateKey(createPrivateKey(files['tls.key'] as string))).toBe(true);
    expect(ca.checkPrivateKey(createPrivateKey(files['ca.key'] as string))).toBe(true);
    expect(leaf.checkHost('injector.istio-system.svc')).toBe('injector.istio-system.svc');
    expect(leaf.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });

  it.skipIf(!hasOpenssl)('writes a chain openssl verify accepts', () => {
    const out = execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), join(dir, 'tls.crt')], { encoding: 'utf8' });
    expect(out.trim()).toBe(`${join(dir, 'tls.crt')}: OK`);
  });

  it('refuses to replace existing files and leaves them as they were', async () => {
    const before = read(dir);
    const line = errorLine(await runCli('certs', '--out', dir, '--dns', 'localhost'));
    const paths = FILES.map((name) => join(dir, name)).join(', ');
    expect(line).toBe(`sidecar-injector certs: ${paths} already exist; use --force to replace them`);
    expect(read(dir)).toEqual(before);
  });

  it('refuses when only one of the files exists, and writes none of the others', async () => {
    const partial = newDir();
    await runCli('certs', '--out', partial, '--dns', 'localhost');
    const leftAlone = readFileSync(join(partial, 'tls.key'), 'utf8');
    // A directory holding only a key: writing the others would pair a new CA and certificate with an old key.
    const emptied = newDir();
    mkdirSync(emptied, { recursive: true });
    writeFileSync(join(emptied, 'tls.key'), leftAlone);
    errorLine(await runCli('certs', '--out', emptied, '--dns', 'localhost'));
    expect(FILES.filter((name) => existsSync(join(emptied, name)))).toEqual(['tls.key']);
  });

  it('replaces them with --force, keys back at mode 0600', async () => {
    const forced = newDir();
    await runCli('certs', '--out', forced, '--dns', 'localhost');
    const before = read(forced);
    chmodSync(join(forced, 'tls.key'), 0o644);
    expect(await runCli('certs', '--out', forced, '--dns', 'webhook.example', '--force')).toMatchObject({ code: 0, stderr: '' });
    const after = read(forced);
    for (const name of FILES) expect(after[name]).not.toBe(before[name]);
    expect(new X509Certificate(after['tls.crt'] as string).subjectAltName).toBe('DNS:webhook.example');
    expect(modeOf(join(forced, 'tls.key'))).toBe(0o600);
  });

  it('refuses names that are neither DNS names nor IP addresses, and missing flags', async () => {
    const out = newDir();
    for (const argv of [
      ['--out', out, '--dns', 'not a name'],
      ['--out', out, '--dns', '999.1.1.1'],
      ['--out', out],
      ['--dns', 'localhost'],
      ['--out', out, '--dns', 'localhost', 'extra'],
    ]) {
      expect(errorLine(await runCli('certs', ...argv))).toMatch(/^sidecar-injector certs: /);
    }
    expect(existsSync(out)).toBe(false);
  });
});
