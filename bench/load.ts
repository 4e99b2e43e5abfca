// Load from processes of their own, so the client never shares the server's event loop: wrk for throughput at
// saturation, autocannon to send an exact number of requests, open-loop.ts for latency at a fixed rate.
//
// wrk (Debian's package: apt-get install wrk) rather than autocannon for saturation: autocannon spends about as
// much CPU per request as the server and, on the one core the load has, saturated itself before the server.

import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { pinned } from './servers.js';

const run = promisify(execFile);
/** Load generators run on the first core; the servers have the second to themselves (servers.ts). */
const CLIENT_CPU = '0';
const ROOT = new URL('..', import.meta.url).pathname;
const AUTOCANNON = join(createRequire(import.meta.url).resolve('autocannon/package.json'), '../autocannon.js');
/** As in performance-notes.md: ten connections saturate one server process on this machine. */
export const SATURATION_CONNECTIONS = 10;

export interface Saturation {
  requestsPerSecond: number;
  non2xx: number;
  errors: number;
}

interface AutocannonResult {
  requests: { average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}

function autocannonArguments(url: string, bodyFile: string, limit: string[]): string[] {
  return [AUTOCANNON, '-c', String(SATURATION_CONNECTIONS), ...limit, '-m', 'POST', '-H', 'content-type=application/json', '-i', bodyFile, '-j', '-n', url];
}

/** Requests per second with every connection kept busy for `seconds`. */
export async function saturate(url: string, bodyFile: string, seconds: number): Promise<Saturation> {
  const { stdout } = await run(
    ...pinned(CLIENT_CPU, 'wrk', ['-t1', `-c${SATURATION_CONNECTIONS}`, `-d${seconds}s`, '-s', join(ROOT, 'bench/post.lua'), url]),
    { env: { ...process.env, BODY: bodyFile } },
  );
  const count = (pattern: RegExp) => (pattern.exec(stdout)?.slice(1) ?? []).reduce((sum, n) => sum + Number(n), 0);
  const requestsPerSecond = Number(/^Requests\/sec:\s+([\d.]+)/m.exec(stdout)?.[1]);
  if (!Number.isFinite(requestsPerSecond)) throw new Error(`wrk printed no rate:\n${stdout}`);
  return {
    requestsPerSecond,
    non2xx: count(/Non-2xx or 3xx responses: (\d+)/),
    errors: count(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/),
  };
}

/** Sends exactly `amount` requests as fast as the server takes them. */
export async function sendMany(url: string, bodyFile: string, amount: number): Promise<Saturation> {
  const { stdout } = await run(...pinned(CLIENT_CPU, process.execPath, autocannonArguments(url, bodyFile, ['-a', String(amount)])), { maxBuffer: 1 << 24 });
  const result = JSON.parse(stdout) as AutocannonResult;
  return { requestsPerSecond: result.requests.average, non2xx: result.non2xx, errors: result.errors + result.timeouts };
}

export interface Latency {
  requests: number;
  failed: number;
  failures: Record<string, number>;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  peakConnections: number;
  sendLagP99: number;
}

export async function openLoop(url: string, bodyFile: string, rate: number, seconds: number, warmUpSeconds: number): Promise<Latency> {
  const { stdout } = await run(
    ...pinned(CLIENT_CPU, process.execPath, ['--import', 'tsx', join(ROOT, 'bench/open-loop.ts'), url, bodyFile, String(rate), String(seconds + warmUpSeconds), String(warmUpSeconds)]),
    { cwd: ROOT, maxBuffer: 1 << 24 },
  );
  return JSON.parse(stdout) as Latency;
}
