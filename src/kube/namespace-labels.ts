// Where the server learns a namespace's labels: from the cluster through an informer, or from the config file's
// `namespaces:` when there is no cluster. The webhook reads them once per review, from memory.

import type { KubeConfig, ListWatch, V1Namespace } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { StringMap } from '../core/labels.js';

export interface NamespaceLabels {
  /** The namespace's labels; undefined when the namespace is unknown (the core treats it as unlabelled). */
  get(name: string): StringMap | undefined;
  /** Whether labels are known at all; the server is not ready before. */
  ready(): boolean;
}

/** Labels from the config file: a namespace not listed has none. Known from the start. */
export function staticNamespaceLabels(namespaces: Record<string, Record<string, string>>): NamespaceLabels {
  const byName = new Map(Object.entries(namespaces));
  return { get: (name) => byName.get(name), ready: () => true };
}

export interface InformerOptions {
  logger: Logger;
  /** The first restart waits this long; each failed restart doubles it, up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** The same bounds as the library's own watch reconnects (ListWatch BASE/MAX_RECONNECT_DELAY_MS). */
const DEFAULT_INITIAL_BACKOFF_MS = 1_000;
const DEFAULT_MAX_BACKOFF_MS = 30_000;

/**
 * Namespaces listed then watched by @kubernetes/client-node's ListWatch. The library relists after 410 Gone and
 * reconnects a watch that ends cleanly, but after any other error it only calls the error callbacks and stops;
 * we restart it with exponential backoff. Its stop() also calls the error callbacks, so a restart checks that the
 * stop was not ours.
 */
export class NamespaceInformer implements NamespaceLabels {
  private stopped = false;
  private synced = false;
  private failedRestarts = 0;
  private errorsSeen = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly logger: Logger;

  private constructor(
    private readonly informer: ListWatch<V1Namespace>,
    options: InformerOptions,
  ) {
    this.logger = options.logger;
    this.initialBackoffMs = options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
    this.maxBackoffMs = options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
    informer.on('error', (error) => this.failed(error));
  }

  /** Loads @kubernetes/client-node only here: it takes most of a second to import, which static labels never pay. */
  static async create(kubeConfig: KubeConfig, options: InformerOptions): Promise<NamespaceInformer> {
    const k8s = await import('@kubernetes/client-node');
    const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    // ListWatch rather than makeInformer (which builds the same object) for its latestResourceVersion(); autoStart
    // false, as makeInformer passes, so that start() is ours to call.
    const informer = new k8s.ListWatch<V1Namespace>(
      '/api/v1/namespaces',
      new k8s.Watch(kubeConfig),
      () => core.listNamespace(),
      false,
    );
    return new NamespaceInformer(informer, options);
  }

  get(name: string): StringMap | undefined {
    return this.informer.get(name)?.metadata?.labels;
  }

  ready(): boolean {
    // ListWatch records the list's resourceVersion right after filling its cache. Once filled, the cache is kept
    // through outages and relists (stale at worst), so readiness latches.
    this.synced ||= this.informer.latestResourceVersion() !== '';
    return this.synced;
  }

  /** Returns at once; the first list and every restart run in the background. */
  start(): void {
    void this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.informer.stop();
  }

  private async run(): Promise<void> {
    const errorsBefore = this.errorsSeen;
    try {
      // Resolves once the watch is open, or after an error was reported to `failed`.
      await this.informer.start();
    } catch (error) {
      // Thrown before the library reports anything (e.g. the cluster URL or credentials cannot be used).
      this.failed(error);
      return;
    }
    if (this.stopped) {
      // The library aborts only a watch already open: stopped during the list or while the watch request was
      // pending, it opens the watch anyway.
      await this.informer.stop();
      return;
    }
    if (this.errorsSeen === errorsBefore) {
      this.failedRestarts = 0;
      this.logger.info({ namespaces: this.informer.list().length }, 'namespace informer watching');
    }
  }

  private failed(error: unknown): void {
    this.errorsSeen++;
    if (this.stopped || this.restartTimer !== undefined) return;
    const delayMs = Math.min(this.initialBackoffMs * 2 ** this.failedRestarts, this.maxBackoffMs);
    this.failedRestarts++;
    this.logger.warn(
      { err: { message: (error as Error | undefined)?.message ?? String(error) }, delayMs },
      'namespace informer failed; restarting',
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopped) void this.run();
    }, delayMs);
  }
}
