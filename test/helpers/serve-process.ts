// `sidecar-injector serve` as a real process through the package's bin, for what only a process shows: signals,
// exit codes, two replicas racing. Without cluster access unless the environment given says otherwise.

import { type ChildProcess, spawn } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import { REPO } from './cli.js';

export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

export interface ServeProcess {
  child: ChildProcess;
  port: number;
  /** Every line logged so far, parsed. */
  lines: Record<string, unknown>[];
  /** The exit code, and performance.now() at exit. */
  exited: Promise<{ code: number | null; at: number }>;
  stderr(): string;
}

/** Starts `serve --port <free port>` with `flags` and resolves once it logs that it is serving. */
export async function startServe(flags: string[], env: Record<string, string | undefined> = {}): Promise<ServeProcess> {
  const port = await freePort();
  const childEnv = { ...process.env, KUBECONFIG: undefined, KUBERNETES_SERVICE_HOST: undefined, ...env };
  const child = spawn(process.execPath, ['bin/sidecar-injector.js', 'serve', '--port', String(port), ...flags], {
    cwd: REPO,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.once('exit', (code) => resolve({ code, at: performance.now() })),
  );
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  let pending = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      const parts = (pending + chunk.toString('utf8')).split('\n');
      pending = parts.pop() ?? '';
      for (const part of parts) {
        const line = JSON.parse(part) as Record<string, unknown>;
        lines.push(line);
        if (String(line.msg).startsWith('sidecar-injector serving')) resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
  });
  return { child, port, lines, exited, stderr: () => stderr };
}
