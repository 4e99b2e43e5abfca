// One revision's webhook server as the real process: bin/sidecar-injector.js serve under this Node (24, from
// npm run), with the arguments the chart's Deployment gives it and its own ServiceAccount's credentials.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/sidecar-injector.js', import.meta.url));
const EXIT_WITH_PARENT = fileURLToPath(new URL('./exit-with-parent.mjs', import.meta.url));
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export interface ServerLaunch {
  args: string[];
  env: Record<string, string>;
}

/** A line the server logs per admission review (it holds more: pod, decision, revision, reason). */
export interface ReviewLine {
  namespace?: string;
}

export class WebhookServer {
  private process: ChildProcess | undefined;
  private exited: Promise<unknown> = Promise.resolve();
  /** stdout and stderr of every run, in order. */
  private output = '';
  /** stdout alone: log lines that no stderr chunk can split. */
  private stdout = '';

  constructor(
    readonly name: string,
    readonly port: number,
  ) {}

  get running(): boolean {
    return this.process !== undefined;
  }

  /** Starts the server and waits until it says it is ready. */
  async start(launch: ServerLaunch): Promise<void> {
    this.output += `--- ${this.name}: sidecar-injector ${launch.args.join(' ')}\n`;
    const child = spawn(process.execPath, ['--import', EXIT_WITH_PARENT, BIN, ...launch.args], {
      env: launch.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process = child;
    // 'close' rather than 'exit': by then everything it wrote has been read.
    this.exited = once(child, 'close').then(([code, signal]) => {
      this.output += `--- ${this.name} exited (${signal ?? `code ${code}`})\n`;
      if (this.process === child) this.process = undefined;
    });
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      this.output += chunk;
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    await this.waitUntilReady(child);
  }

  /** SIGINT rather than SIGTERM: the server then skips the drain delay that waits for a Service's endpoints to update. */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child) return;
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  async restart(launch: ServerLaunch): Promise<void> {
    await this.stop();
    await this.start(launch);
  }

  /** The reviews it has logged, over every run. */
  reviews(): ReviewLine[] {
    // The last piece is empty, or a line still being written.
    return this.stdout
      .split('\n')
      .slice(0, -1)
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as ReviewLine & { msg?: string })
      .filter((line) => line.msg === 'review');
  }

  logs(): string {
    return this.output;
  }

  private async waitUntilReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.process !== child) throw new Error(`${this.name} exited while starting:\n${this.output}`);
      if ((await this.readyz()) === 200) return;
      await sleep(100);
    }
    throw new Error(`${this.name} was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${this.output}`);
  }

  /** /readyz's status, or undefined while nothing listens. Unverified TLS, as the kubelet's HTTPS probes. */
  private readyz(): Promise<number | undefined> {
    return new Promise((resolve) => {
      const target = { host: '127.0.0.1', port: this.port, path: '/readyz', rejectUnauthorized: false, timeout: 1_000 };
      const probe = request(target, (response) => {
        response.resume();
        resolve(response.statusCode);
      });
      probe.on('error', () => resolve(undefined));
      probe.on('timeout', () => probe.destroy());
      probe.end();
    });
  }
}
