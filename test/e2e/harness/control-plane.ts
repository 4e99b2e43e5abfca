// etcd, kube-apiserver and kube-controller-manager on loopback, through control-plane/start.sh (built by
// control-plane/build.sh, which `npm run test:e2e` runs first). start.sh is the one process to stop: it stops and
// reaps the three, and stops by itself when this process is gone.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const START_SCRIPT = fileURLToPath(new URL('../control-plane/start.sh', import.meta.url));
const COMPONENTS = ['etcd', 'kube-apiserver', 'kube-controller-manager'] as const;

export class ControlPlane {
  private readonly process: ChildProcess;
  /** start.sh's progress lines, and the log tails it prints when start-up fails. */
  private progress = '';
  private readonly exited: Promise<unknown>;

  /** Starts it; ready() says when it can be used, stop() works before that too. */
  constructor(private readonly dir: string) {
    this.process = spawn('bash', [START_SCRIPT, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.process.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.progress += chunk));
    this.exited = once(this.process, 'exit');
  }

  /** The admin kubeconfig's path, once the API server is ready and the controller-manager runs. */
  async ready(): Promise<string> {
    // The first stdout line is the kubeconfig path, printed once everything is ready.
    const firstLine = once(createInterface({ input: this.process.stdout! }), 'line');
    const kubeconfigPath = await Promise.race([firstLine.then(([line]) => String(line)), this.exited.then(() => undefined)]);
    if (kubeconfigPath === undefined) throw new Error(`the control plane did not start:\n${this.progress}`);
    return kubeconfigPath;
  }

  /** The components' logs (their last lines), for a failed run. */
  logs(lines = 150): string {
    const sections = [`--- control plane start-up\n${this.progress}`];
    for (const component of COMPONENTS) {
      let text: string;
      try {
        text = readFileSync(join(this.dir, 'logs', `${component}.log`), 'utf8');
      } catch (error) {
        text = `(no log: ${(error as Error).message})`;
      }
      sections.push(`--- ${component} (last ${lines} lines)\n${text.split('\n').slice(-lines).join('\n')}`);
    }
    return sections.join('\n');
  }

  async stop(): Promise<void> {
    this.process.kill('SIGTERM');
    await this.exited;
  }
}
