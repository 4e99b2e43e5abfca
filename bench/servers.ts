// The two servers under load, each its own process on loopback: the real `sidecar-injector serve`, and the bare
// Fastify baseline (bare-server.ts) with the same certificate.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const ROOT = new URL('..', import.meta.url).pathname;
const run = promisify(execFile);
const START_TIMEOUT_MS = 30_000;
/**
 * Servers run on the second core and load on the first (see load.ts). Unpinned, the scheduler moves the client's
 * threads onto the server's core and back, and a server preempted for a few milliseconds shows as tail latency of
 * the bare baseline as much as of ours: pinned, the tails are the server's own.
 */
export const SERVER_CPU = '1';

/** `taskset -c CPU command args`: runs the command on one core. */
export const pinned = (cpu: string, command: string, args: string[]): [string, string[]] => ['taskset', ['-c', cpu, command, ...args]];

export interface RunningServer {
  name: string;
  process: ChildProcess;
  port: number;
  url(path: string): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The environment without cluster access: namespace labels must come from the benchmark's config file. */
function offlineEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.KUBECONFIG;
  delete env.KUBERNETES_SERVICE_HOST;
  return env;
}

function running(name: string, child: ChildProcess, port: number): RunningServer {
  return {
    name,
    process: child,
    port,
    url: (path) => `https://127.0.0.1:${port}${path}`,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function waitUntil(server: RunningServer, path: string, method = 'GET'): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.process.exitCode !== null) throw new Error(`${server.name} exited with ${server.process.exitCode}`);
    const status = await httpsStatus(server.url(path), method).catch(() => 0);
    if (status > 0 && status < 500) return;
    await sleep(100);
  }
  throw new Error(`${server.name} did not answer ${path} within ${START_TIMEOUT_MS} ms`);
}

function httpsStatus(url: string, method: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Compiles the sources as the image does (`npm run build`), into a folder inside the project so that the compiled
 * code finds node_modules as dist/ does in the image. Returns the entry point the image runs.
 */
export async function buildInjector(): Promise<string> {
  const outDir = join(ROOT, 'node_modules/.cache/sidecar-injector-bench/dist');
  await rm(outDir, { recursive: true, force: true });
  await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', outDir]);
  return join(outDir, 'cli/main.js');
}

/**
 * `sidecar-injector serve` as the image runs it (`node dist/cli/main.js serve`, NODE_ENV=production, the image's
 * NODE_OPTIONS), logging to `logFile` as it would to a container's stdout.
 */
export async function startInjector(entryPoint: string, workDir: string, configFile: string, logFile: string, nodeOptions: string): Promise<RunningServer> {
  const port = await freePort();
  const child = spawn(
    ...pinned(SERVER_CPU, process.execPath, [entryPoint, 'serve', '--port', String(port), '--cert-dir', join(workDir, 'certs'), '--config', configFile]),
    { stdio: ['ignore', openSync(logFile, 'a'), 'inherit'], env: { ...offlineEnvironment(), NODE_ENV: 'production', NODE_OPTIONS: nodeOptions } },
  );
  const server = running('injector', child, port);
  await waitUntil(server, '/readyz');
  return server;
}

/** NODE_OPTIONS as the Dockerfile sets it (ENV NODE_OPTIONS=...), or none. */
export async function imageNodeOptions(): Promise<string> {
  const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8').catch(() => '');
  return /^ENV NODE_OPTIONS=("?)(.*)\1\s*$/m.exec(dockerfile)?.[2] ?? '';
}

/** The bare baseline, answering each workload with a body as long as `answerLengths[workload]`. */
export async function startBare(workDir: string, answerLengths: Record<string, number>): Promise<RunningServer> {
  const port = await freePort();
  const child = spawn(
    ...pinned(SERVER_CPU, process.execPath, ['--import', 'tsx', join(ROOT, 'bench/bare-server.ts'), String(port), join(workDir, 'certs'), JSON.stringify(answerLengths)]),
    { stdio: ['ignore', 'ignore', 'inherit'], cwd: ROOT },
  );
  const server = running('bare', child, port);
  await waitUntil(server, '/', 'POST');
  return server;
}

export interface Answer {
  status: number;
  body: string;
}

/** One POST over a connection of `agent` (keep-alive), for checks and sequential timings. */
export function post(url: string, body: string | Buffer, agent: Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export const keepAliveAgent = () => new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });

/** Resident set size of a process, from /proc, in MiB. */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
  return kib / 1024;
}
