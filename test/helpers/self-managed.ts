// Replicas of the webhook with self-managed certificates, in process, wired as `serve --cert-secret` wires them
// (the Secret store and webhook configurations through @kubernetes/client-node against a FakeKubeApi), and TLS
// probes that report which certificate a server presents and whether a given CA bundle trusts it.

import type { AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import pino from 'pino';
import { resolveConfig } from '../../src/config/schema.js';
import {
  type CertificateLifetimes,
  kubernetesSecretStore,
  SelfManagedCertificates,
} from '../../src/kube/certificate-secret.js';
import { staticNamespaceLabels } from '../../src/kube/namespace-labels.js';
import { kubernetesWebhookConfigurations, WebhookCaBundle } from '../../src/kube/webhook-ca-bundle.js';
import { buildApp, type InjectorApp, replaceServingCertificate } from '../../src/server/app.js';
import { serviceName, servingNames } from '../../src/server/tls.js';
import type { FakeKubeApi } from './fake-kube-api.js';
import type { LogLine } from './https.js';

export const NAMESPACE = 'mesh';
export const REVISION = 'canary';
export const SECRET_NAME = 'sidecar-injector-canary-tls';
export const SERVICE = { name: serviceName(REVISION), namespace: NAMESPACE };
export const NAMES = servingNames(REVISION, NAMESPACE);

/** A year and ten, as `serve` defaults to: nothing rotates during a test unless it asks for short lifetimes. */
export const LONG_LIFETIMES: CertificateLifetimes = {
  servingValidityMs: 365 * 24 * 3_600_000,
  caValidityMs: 3650 * 24 * 3_600_000,
  trustPropagationMs: 5 * 60_000,
};

export interface ReplicaOptions {
  lifetimes?: CertificateLifetimes;
  /** How often this replica reads the Secret. */
  secretPollMs?: number;
  /** How often it reads the webhook configurations. */
  webhookPollMs?: number;
  configurations?: string[];
}

export interface Replica {
  app: InjectorApp;
  port: number;
  certificates: SelfManagedCertificates;
  caBundle: WebhookCaBundle;
  logs: LogLine[];
  close(): Promise<void>;
}

export async function startReplica(api: FakeKubeApi, options: ReplicaOptions = {}): Promise<Replica> {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const kubeConfig = api.kubeConfig();
  const certificates = new SelfManagedCertificates({
    store: await kubernetesSecretStore(kubeConfig, NAMESPACE, SECRET_NAME),
    names: NAMES,
    lifetimes: options.lifetimes ?? LONG_LIFETIMES,
    pollIntervalMs: options.secretPollMs ?? 60_000,
    logger,
  });
  const caBundle = new WebhookCaBundle({
    client: await kubernetesWebhookConfigurations(kubeConfig),
    configurations: options.configurations ?? [],
    service: SERVICE,
    bundle: { current: () => certificates.current.caBundle, refresh: async () => (await certificates.sync()).caBundle },
    pollIntervalMs: options.webhookPollMs ?? 60_000,
    logger,
  });
  const tls = await certificates.start();
  const config = resolveConfig({ revision: REVISION });
  const extraMetrics = () => caBundle.renderMetrics();
  const app = buildApp({ tls, config, namespaceLabels: staticNamespaceLabels({}), logger, extraMetrics });
  certificates.onServingCertificate((next) => replaceServingCertificate(app, next));
  certificates.onCaBundle(() => void caBundle.reconcile());
  caBundle.start();
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return {
    app,
    port,
    certificates,
    caBundle,
    logs,
    async close() {
      certificates.stop();
      caBundle.stop();
      await app.close();
    },
  };
}

export interface Handshake {
  /** SHA-256 fingerprint of the certificate presented. */
  fingerprint: string;
  /** The issuer's common name. */
  issuer: string;
  /** Whether `ca` verifies it for the name dialled. */
  trusted: boolean;
}

/** Opens a new TLS connection, as the API server does for a review, and reports what it was shown. */
export function handshake(port: number, ca: string, servername = `${SERVICE.name}.${NAMESPACE}.svc`): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername, rejectUnauthorized: false }, () => {
      const peer = socket.getPeerCertificate();
      resolve({ fingerprint: peer.fingerprint256, issuer: String(peer.issuer.CN), trusted: socket.authorized });
      socket.end();
    });
    socket.on('error', reject);
  });
}

/** The webhook configuration's caBundle of the webhook at `index`, decoded. */
export function caBundleOf(api: FakeKubeApi, configuration: string, index = 0): string | undefined {
  const webhooks = api.webhookConfiguration(configuration)?.webhooks as { clientConfig: { caBundle?: string } }[] | undefined;
  const encoded = webhooks?.[index]?.clientConfig.caBundle;
  return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8');
}

/** A MutatingWebhookConfiguration as the chart renders it in self-managed mode: webhooks without a caBundle. */
export function webhookConfiguration(name: string, webhooks: { name: string; service?: { name: string; namespace: string } }[]) {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name },
    webhooks: webhooks.map((webhook) => ({
      name: webhook.name,
      clientConfig: { service: { ...(webhook.service ?? SERVICE), path: '/inject', port: 443 } },
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
    })),
  };
}

export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
