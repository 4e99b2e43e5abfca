// Our Helm chart installed into the real API server the way helm would, one release per revision, with the
// release's Deployment replaced by a local server process started with the Deployment's own arguments, config and
// ServiceAccount. Nothing is hand-written: RBAC, the webhook configurations and the server's flags are the chart's.
//
// The one change to what the chart renders routes its webhooks to those processes. Each Service becomes an
// ExternalName Service for localhost, which the API server resolves for a webhook's clientConfig.service, and each
// webhook calls its revision's server on that server's port instead of 443. The API server then calls
// https://<service>.istio-system.svc:<port>/inject and checks the certificate against that Service name, as in a
// cluster, and the server recognises the webhooks that call its Service as its own and patches their caBundle.
// (A clientConfig.url would reach the process too, but the server patches only webhooks that call its Service.)

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Helm, RELEASE_NAMESPACE } from '../../helm/helm.js';
import type { Manifest, MutatingWebhookConfiguration } from '../../helm/manifests.js';
import type { Cluster } from './cluster.js';
import { type ServerLaunch, WebhookServer } from './webhook-server.js';

/** The chart's values a test changes between installs. */
export interface ReleaseValues {
  revisionTags?: string[];
  webhook?: { failurePolicy?: 'Fail' | 'Ignore' };
}

/** Flags whose values in the pod (a port, mounted paths) mean nothing on this machine. */
const LOCAL_FLAGS = ['port', 'cert-dir', 'config'] as const;

const isHook = (manifest: Manifest) => manifest.metadata.annotations?.['helm.sh/hook'] !== undefined;

export class Release {
  readonly server: WebhookServer;
  /** The release name, as `helm install NAME` gives it. */
  readonly name: string;
  private readonly dir: string;
  private kubeconfigPath: string | undefined;
  private launch: ServerLaunch | undefined;
  /** The Deployment's pod template: a change restarts the server, as it rolls the Deployment's pods. */
  private podTemplate: string | undefined;

  constructor(
    private readonly helm: Helm,
    private readonly cluster: Cluster,
    /** "" for the default revision. */
    readonly revision: string,
    port: number,
    /** Every revision's Service name and its server's port: a tag's webhooks may call another revision's. */
    private readonly serverPorts: Map<string, number>,
    workDir: string,
  ) {
    this.name = revision ? `sidecar-injector-${revision}` : 'sidecar-injector';
    this.server = new WebhookServer(this.name, port);
    this.dir = join(workDir, this.name);
    mkdirSync(join(this.dir, 'certs'), { recursive: true });
  }

  /**
   * `helm upgrade --install`: applies what the chart renders, deletes the webhook configurations it no longer
   * renders (a tag that moved away), and restarts the server when its flags or config changed.
   */
  async upgrade(values: ReleaseValues = {}): Promise<void> {
    const manifests = this.helm
      .template({ name: this.name, values: { ...values, revision: this.revision } })
      .filter((manifest) => !isHook(manifest));
    for (const manifest of manifests) {
      if (manifest.kind !== 'Deployment') await this.cluster.apply(this.routedToLoopback(manifest));
    }
    await this.pruneWebhookConfigurations(manifests);

    const deployment = manifests.find((manifest) => manifest.kind === 'Deployment')!;
    // The template carries the flags and a checksum of the config, so any change to either shows here. A server a
    // test stopped stays stopped when nothing changed, as helm leaves a Deployment without ready pods alone.
    const podTemplate = JSON.stringify((deployment.spec as { template: unknown }).template);
    if (podTemplate === this.podTemplate) return;
    this.launch = await this.serverLaunch(deployment, manifests.find((manifest) => manifest.kind === 'ConfigMap')!);
    this.podTemplate = podTemplate;
    await this.server.restart(this.launch);
  }

  /** The Secret the server keeps its CA and serving certificate in, as the chart tells it (--cert-secret). */
  get certificateSecret(): string {
    const flag = '--cert-secret=';
    const arg = this.launch?.args.find((candidate) => candidate.startsWith(flag));
    if (!arg) throw new Error(`${this.name} runs without ${flag}NAME: the chart's certificates are not self-managed`);
    return arg.slice(flag.length);
  }

  /** Starts the server stopped by a test, as it ran before. */
  async startServer(): Promise<void> {
    await this.server.start(this.launch!);
  }

  private routedToLoopback(manifest: Manifest): Manifest {
    if (manifest.kind === 'Service') {
      return { ...manifest, spec: { ...(manifest.spec as object), type: 'ExternalName', externalName: 'localhost' } };
    }
    if (manifest.kind === 'MutatingWebhookConfiguration') {
      const configuration = manifest as MutatingWebhookConfiguration;
      return {
        ...configuration,
        webhooks: configuration.webhooks.map((webhook) => {
          const service = webhook.clientConfig.service!;
          const port = this.serverPorts.get(service.name);
          if (port === undefined) throw new Error(`webhook ${webhook.name} calls ${service.name}, which no release here serves`);
          return { ...webhook, clientConfig: { ...webhook.clientConfig, service: { ...service, port } } };
        }),
      };
    }
    return manifest;
  }

  private async pruneWebhookConfigurations(rendered: Manifest[]): Promise<void> {
    const kept = new Set(
      rendered.filter((manifest) => manifest.kind === 'MutatingWebhookConfiguration').map((manifest) => manifest.metadata.name),
    );
    const installed = await this.cluster.list(
      'admissionregistration.k8s.io/v1',
      'MutatingWebhookConfiguration',
      `app.kubernetes.io/instance=${this.name}`,
    );
    for (const configuration of installed) {
      if (!kept.has(configuration.metadata!.name!)) await this.cluster.delete(configuration);
    }
  }

  /** The Deployment's arguments with local paths and port, its ConfigMap's config, its ServiceAccount's identity. */
  private async serverLaunch(deployment: Manifest, configMap: Manifest): Promise<ServerLaunch> {
    type PodSpec = { serviceAccountName: string; containers: { args: string[] }[] };
    const pod = (deployment.spec as { template: { spec: PodSpec } }).template.spec;

    const configPath = join(this.dir, 'config.yaml');
    writeFileSync(configPath, (configMap.data as Record<string, string>)['config.yaml']!);
    const local: Record<(typeof LOCAL_FLAGS)[number], string> = {
      port: String(this.server.port),
      'cert-dir': join(this.dir, 'certs'),
      config: configPath,
    };
    const args = pod.containers[0]!.args;
    for (const flag of LOCAL_FLAGS) {
      if (!args.some((arg) => arg.startsWith(`--${flag}=`))) {
        throw new Error(`the chart's Deployment no longer passes --${flag}=VALUE: ${args.join(' ')}`);
      }
    }
    const localArgs = args.map((arg) => {
      const flag = LOCAL_FLAGS.find((name) => arg.startsWith(`--${name}=`));
      return flag ? `--${flag}=${local[flag]}` : arg;
    });

    // The token is valid for an hour, longer than any run.
    if (!this.kubeconfigPath) {
      this.kubeconfigPath = join(this.dir, 'kubeconfig');
      writeFileSync(this.kubeconfigPath, await this.cluster.serviceAccountKubeconfig(RELEASE_NAMESPACE, pod.serviceAccountName));
    }
    const env = { ...process.env, KUBECONFIG: this.kubeconfigPath, POD_NAMESPACE: RELEASE_NAMESPACE } as Record<string, string>;
    return { args: localArgs, env };
  }
}
