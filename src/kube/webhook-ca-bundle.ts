// Keeps the caBundle of this revision's webhooks equal to the self-managed CA bundle: set on start, set again
// whenever it differs (a rotation, a re-applied manifest that blanked it, someone's edit), checked every poll
// interval. A stale or empty caBundle fails every review with "x509: certificate signed by unknown authority",
// the injector failure users report most (peers.md §2).
//
// "This revision's webhooks" are those that call this revision's Service: a configuration may hold others (a
// revision tag moving between revisions, someone else's webhook), and those are left alone.

import type { KubeConfig, V1MutatingWebhook, V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { TlsError } from '../errors.js';
import { apiStatus, boundedRequests, describeApiError } from './api-requests.js';
import { PollingRound } from './polling-round.js';

/** One RFC 6902 operation, as sent in a JSON patch. */
export interface JsonPatchOperation {
  op: 'add' | 'test';
  path: string;
  value: unknown;
}

/** The MutatingWebhookConfigurations: through the API server in a cluster. */
export interface WebhookConfigurationClient {
  /** undefined when the configuration does not exist. */
  read(name: string): Promise<V1MutatingWebhookConfiguration | undefined>;
  patch(name: string, operations: JsonPatchOperation[]): Promise<void>;
}

export async function kubernetesWebhookConfigurations(kubeConfig: KubeConfig): Promise<WebhookConfigurationClient> {
  const k8s = await import('@kubernetes/client-node');
  const api = kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api);
  const bounded = boundedRequests(k8s);
  return {
    async read(name) {
      try {
        return await api.readMutatingWebhookConfiguration({ name }, bounded);
      } catch (error) {
        if (apiStatus(k8s, error) === 404) return undefined;
        throw new TlsError(`cannot read MutatingWebhookConfiguration ${name}: ${describeApiError(k8s, error)}`);
      }
    },
    async patch(name, operations) {
      try {
        // A JSON patch is the client's default content type for patch calls.
        await api.patchMutatingWebhookConfiguration({ name, body: operations }, bounded);
      } catch (error) {
        throw new TlsError(`cannot patch MutatingWebhookConfiguration ${name}: ${describeApiError(k8s, error)}`);
      }
    },
  };
}

export interface ServiceReference {
  name: string;
  namespace: string;
}

/** The CA bundle (PEM): what this replica holds, and a fresh read of the Secret for when the two may differ. */
export interface CaBundleSource {
  current(): string;
  refresh(): Promise<string>;
}

export interface WebhookCaBundleOptions {
  client: WebhookConfigurationClient;
  /** The MutatingWebhookConfigurations to keep right, by name. */
  configurations: string[];
  /** This revision's Service: webhooks calling it are this revision's. */
  service: ServiceReference;
  bundle: CaBundleSource;
  /** How often the configurations are read: a blanked caBundle is restored within it. */
  pollIntervalMs: number;
  logger: Logger;
}

/** Istio's failure reasons (pkg/webhooks/monitoring.go), for webhook_patch_failures_total. */
type PatchFailure =
  | 'webhook_config_not_found'
  | 'webhook_entry_not_found'
  | 'load_ca_bundle_failure'
  | 'webhook_update_failure';

interface Failure {
  failure: PatchFailure;
  message: string;
}

const base64 = (pem: string) => Buffer.from(pem, 'utf8').toString('base64');

export class WebhookCaBundle {
  private readonly rounds: PollingRound<void>;
  private readonly attempts: Map<string, number>;
  /** Keyed by configuration name, then reason. */
  private readonly failures = new Map<string, Map<PatchFailure, number>>();

  constructor(private readonly options: WebhookCaBundleOptions) {
    this.attempts = new Map(options.configurations.map((name) => [name, 0]));
    // reconcileAll logs and counts its own failures and never throws.
    this.rounds = new PollingRound(() => this.reconcileAll(), options.pollIntervalMs, () => {});
  }

  /** Reconciles now, then every poll interval; returns at once. */
  start(): void {
    void this.reconcile();
    this.rounds.poll();
  }

  stop(): void {
    this.rounds.stop();
  }

  /** Brings every configuration in line once; never throws (failures are logged and counted). Calls share a round. */
  reconcile(): Promise<void> {
    return this.rounds.run();
  }

  /** Istio's webhook_patch_attempts_total and webhook_patch_failures_total, in the Prometheus text format. */
  renderMetrics(): string {
    const lines = [
      '# HELP webhook_patch_attempts_total Webhook patching attempts',
      '# TYPE webhook_patch_attempts_total counter',
      ...[...this.attempts].map(([name, count]) => `webhook_patch_attempts_total{name="${name}"} ${count}`),
      '# HELP webhook_patch_failures_total Webhook patching total failures',
      '# TYPE webhook_patch_failures_total counter',
    ];
    for (const [name, reasons] of this.failures) {
      for (const [reason, count] of reasons) {
        lines.push(`webhook_patch_failures_total{name="${name}",reason="${reason}"} ${count}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }

  private async reconcileAll(): Promise<void> {
    for (const name of this.options.configurations) {
      try {
        await this.reconcileOne(name);
      } catch (error) {
        // Reading failed: not an attempt to patch, and the next poll reads again.
        this.options.logger.warn({ err: { message: (error as Error).message } }, 'cannot check a webhook caBundle');
      }
    }
  }

  private callsOurService(webhook: V1MutatingWebhook): boolean {
    const service = webhook.clientConfig?.service;
    return service?.name === this.options.service.name && service.namespace === this.options.service.namespace;
  }

  private async reconcileOne(name: string): Promise<void> {
    const outcome = await this.bringInLine(name);
    if (outcome === 'in-line') return;
    this.attempts.set(name, (this.attempts.get(name) ?? 0) + 1);
    if ('patched' in outcome) {
      this.options.logger.info({ configuration: name, webhooks: outcome.patched }, 'set the caBundle of the webhooks');
      return;
    }
    const reasons = this.failures.get(name) ?? new Map<PatchFailure, number>();
    reasons.set(outcome.failure, (reasons.get(outcome.failure) ?? 0) + 1);
    this.failures.set(name, reasons);
    this.options.logger.warn(
      { configuration: name, reason: outcome.failure, err: { message: outcome.message } },
      'cannot set the caBundle of the webhooks',
    );
  }

  /** Throws only when the configuration cannot be read. */
  private async bringInLine(name: string): Promise<'in-line' | { patched: string[] } | Failure> {
    const { client, bundle } = this.options;
    const configuration = await client.read(name);
    if (!configuration) {
      return { failure: 'webhook_config_not_found', message: `MutatingWebhookConfiguration ${name} does not exist` };
    }
    const ours = (configuration.webhooks ?? []).flatMap((webhook, index) => (this.callsOurService(webhook) ? [{ webhook, index }] : []));
    if (ours.length === 0) {
      const { name: service, namespace } = this.options.service;
      const message = `no webhook in ${name} calls the Service ${namespace}/${service}`;
      return { failure: 'webhook_entry_not_found', message };
    }
    const stale = (pem: string) => ours.filter(({ webhook }) => webhook.clientConfig?.caBundle !== base64(pem));
    if (stale(bundle.current()).length === 0) return 'in-line';

    let pem: string;
    try {
      // From the Secret, not memory: a replica that has not seen the latest rotation yet would otherwise put an
      // older bundle back over the one the replica that rotated just set.
      pem = await bundle.refresh();
    } catch (error) {
      return { failure: 'load_ca_bundle_failure', message: (error as Error).message };
    }
    const toPatch = stale(pem);
    if (toPatch.length === 0) return 'in-line';
    // Each webhook is addressed by index, so each change is guarded by tests of what sits at that index: had the
    // configuration changed since it was read, the API server refuses the whole patch and the next poll reads
    // again.
    const operations = toPatch.flatMap(({ webhook, index }): JsonPatchOperation[] => [
      { op: 'test', path: `/webhooks/${index}/name`, value: webhook.name },
      { op: 'test', path: `/webhooks/${index}/clientConfig/service`, value: webhook.clientConfig?.service },
      { op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value: base64(pem) },
    ]);
    try {
      await client.patch(name, operations);
    } catch (error) {
      return { failure: 'webhook_update_failure', message: (error as Error).message };
    }
    return { patched: toPatch.map(({ webhook }) => webhook.name) };
  }
}
