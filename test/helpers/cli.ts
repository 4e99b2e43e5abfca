// Running the `sidecar-injector` command in tests. In-process through main() for almost everything (a spawned
// command pays about half a second of start-up); spawned through the real bin only where the process itself is
// what is tested: exit codes, stdin, a closed stdout, nothing printed by Node on the way out.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { ISTIO_INJECT_CORPUS, REALWORLD_DIR } from './reference.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** Istio's kube-inject corpus and real applications' manifests, read where they are (never copied in). */
export const ISTIO_INJECT_DATA = ISTIO_INJECT_CORPUS;
export const REALWORLD = REALWORLD_DIR;
export const FIXTURES = fileURLToPath(new URL('../fixtures/cli/', import.meta.url));

type Write = typeof process.stdout.write;

function capture(stream: NodeJS.WriteStream, sink: { text: string }) {
  return vi.spyOn(stream, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: unknown[]) => {
    sink.text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
    callback?.();
    return true;
  }) as Write);
}

export async function runCli(...argv: string[]): Promise<CliResult> {
  const stdout = { text: '' };
  const stderr = { text: '' };
  const spies = [capture(process.stdout, stdout), capture(process.stderr, stderr)];
  try {
    const code = await main(argv);
    return { code, stdout: stdout.text, stderr: stderr.text };
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}

export interface SpawnOptions {
  stdin?: string;
  /** Close our end of the child's stdout after its first bytes, as `| head -1` does. */
  closeStdoutEarly?: boolean;
}

export function spawnCli(argv: string[], options: SpawnOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/sidecar-injector.js', ...argv], { cwd: REPO });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      if (options.closeStdoutEarly) child.stdout.destroy();
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

/** The error contract of every command: exit 2, one line on stderr, nothing on stdout. Returns the line. */
export function errorLine(result: CliResult): string {
  expect(result, result.stderr).toMatchObject({ code: 2, stdout: '' });
  expect(result.stderr).toMatch(/^[^\n]+\n$/);
  return result.stderr.trimEnd();
}
