// `sidecar-injector serve`: the admission webhook over HTTPS until SIGTERM or SIGINT, then a bounded drain.
//
// Certificates come one of two ways:
// - self-managed (--cert-secret NAME): a CA and serving certificate in that Secret of POD_NAMESPACE, created by
//   whichever replica comes first, rotated before expiry, and the caBundle of this revision's webhooks in each
//   --webhook-config kept equal to its CA bundle;
// - files (otherwise): tls.crt and tls.key in --cert-dir (a mounted Secret, cert-manager's), generated there when
//   absent so `npm start` works on a fresh clone.
// Either way a new certificate is served without a restart.

import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { loadConfig } from '../config/load.js';
import { CA_VALIDITY_DAYS, SERVING_VALIDITY_DAYS } from '../certs/generate.js';
import { UsageError } from '../errors.js';
import {
  defaultTrustPropagationMs,
  kubernetesSecretStore,
  minimumLifetimesMs,
  SelfManagedCertificates,
} from '../kube/certificate-secret.js';
import { clusterAccessFromEnvironment } from '../kube/cluster.js';
import { NamespaceInformer, type NamespaceLabels, staticNamespaceLabels } from '../kube/namespace-labels.js';
import { kubernetesWebhookConfigurations, WebhookCaBundle } from '../kube/webhook-ca-bundle.js';
import { bootstrapProblems } from '../bootstrap-validation/load.js';
import { buildApp, closeGracefully, type InjectorApp, replaceServingCertificate } from '../server/app.js';
import {
  loadOrCreateServingCertificate,
  type ServingCertificate,
  serviceName,
  servingNames,
  watchCertificateFiles,
} from '../server/tls.js';
import { type ParsedFlags, parseFlags, portFlag } from './args.js';

const DEFAULT_PORT = 9443;
const DEFAULT_CERT_DIR = './certs';
/** Where the Service lives when the pod does not say (POD_NAMESPACE from the downward API): Istio's namespace. */
const DEFAULT_SERVICE_NAMESPACE = 'istio-system';
// Every interface, IPv4 and IPv6: in a pod the API server dials the pod IP.
const LISTEN_HOST = '::';
/** How long the process may linger after shutdown for requests to the API server that we cannot abort. */
export const EXIT_GRACE_MS = 1_000;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const DAY_MS = 24 * UNIT_MS.h;
/** The lifetimes `sidecar-injector certs` gives its certificates: a year, and ten for the CA. */
const DEFAULT_SERVING_VALIDITY_MS = SERVING_VALIDITY_DAYS * DAY_MS;
const DEFAULT_CA_VALIDITY_MS = CA_VALIDITY_DAYS * DAY_MS;
/**
 * How often the certificate Secret, the webhook configurations and the certificate files are checked. A blanked
 * caBundle fails every review until it is restored, so not much longer; each check is one small GET per object.
 */
const DEFAULT_POLL_INTERVAL_MS = 10_000;
/**
 * After SIGTERM, how long the server keeps serving while not ready. The kubelet sends SIGTERM as the pod leaves
 * the Service's endpoints, and kube-proxy on each node (the API server's too) takes a moment to stop sending new
 * connections: refused at once, they would fail the reviews they carry, and under failurePolicy Fail the pods.
 * With the drain deadline (10 s) and EXIT_GRACE_MS it stays well inside the chart's 30 s grace period.
 */
const DEFAULT_SHUTDOWN_DELAY_MS = 5_000;

const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|h|m|s))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;

/** A duration as Go and Kubernetes write them (8760h, 1h30m, 1.5s, 500ms), in milliseconds. */
function durationFlag(flags: ParsedFlags, name: string, fallbackMs: number): number {
  const value = flags.values.get(name);
  if (value === undefined) return fallbackMs;
  if (!DURATION.test(value)) {
    throw new UsageError(`--${name} must be a duration such as 8760h, 30m, 10s or 500ms, got "${value}"`);
  }
  let ms = 0;
  for (const [, amount, unit] of value.matchAll(DURATION_PART)) {
    ms += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  return ms;
}

/**
 * A new CA waits a few polls before it signs the served certificate, and that wait must fit in the last third of
 * a lifetime (see defaultTrustPropagationMs).
 */
function checkLifetime(name: string, validityMs: number, minimumMs: number, pollIntervalMs: number): void {
  if (validityMs < minimumMs) {
    throw new UsageError(
      `--${name} must be at least ${minimumMs / 1000}s with --cert-poll-interval ${pollIntervalMs / 1000}s, so renewal and rotation fit before expiry`,
    );
  }
}

/** What keeps the served certificate current once the server runs. */
interface CertificateFollower {
  follow(app: InjectorApp): void;
  stop(): void;
}

export async function serve(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, {
    values: [
      'port',
      'cert-dir',
      'config',
      'revision',
      'cert-secret',
      'cert-validity',
      'ca-validity',
      'cert-poll-interval',
      'shutdown-delay',
    ],
    lists: ['webhook-config'],
  });
  if (flags.positional.length > 0) throw new UsageError(`unexpected argument "${flags.positional[0]}"`);
  const port = portFlag(flags.values.get('port'), DEFAULT_PORT);
  const revision = flags.values.get('revision');
  const config = loadConfig(flags.values.get('config'), revision === undefined ? {} : { revision });
  const pollIntervalMs = durationFlag(flags, 'cert-poll-interval', DEFAULT_POLL_INTERVAL_MS);
  if (pollIntervalMs <= 0) throw new UsageError('--cert-poll-interval must be more than zero');
  const shutdownDelayMs = durationFlag(flags, 'shutdown-delay', DEFAULT_SHUTDOWN_DELAY_MS);
  const certSecret = flags.values.get('cert-secret');
  const webhookConfigs = flags.lists.get('webhook-config') ?? [];
  const servingValidityMs = durationFlag(flags, 'cert-validity', DEFAULT_SERVING_VALIDITY_MS);
  const caValidityMs = durationFlag(flags, 'ca-validity', DEFAULT_CA_VALIDITY_MS);
  if (certSecret === undefined) {
    const misplaced = ['webhook-config', 'cert-validity', 'ca-validity'].find(
      (name) => flags.values.has(name) || flags.lists.has(name),
    );
    if (misplaced) {
      throw new UsageError(`--${misplaced} applies to self-managed certificates only: add --cert-secret NAME`);
    }
  } else {
    const minimum = minimumLifetimesMs(pollIntervalMs);
    checkLifetime('cert-validity', servingValidityMs, minimum.servingValidityMs, pollIntervalMs);
    checkLifetime('ca-validity', caValidityMs, minimum.caValidityMs, pollIntervalMs);
  }

  // Before any certificate is written: a broken KUBECONFIG should leave --cert-dir and the Secret as they were.
  const kubeConfig = await clusterAccessFromEnvironment();
  if (certSecret !== undefined && !kubeConfig) {
    throw new UsageError('--cert-secret needs cluster access: run in a pod, or set KUBECONFIG');
  }

  // Asynchronous writes: lines logged while a write is in flight go out together in the next one, so a busy
  // webhook does not pay a write(2) per review. pino flushes what is left when the process exits.
  const logger = pino(pino.destination({ sync: false }));
  const serviceNamespace = process.env.POD_NAMESPACE || DEFAULT_SERVICE_NAMESPACE;
  const names = servingNames(config.revision, serviceNamespace);

  let informer: NamespaceInformer | undefined;
  let namespaceLabels: NamespaceLabels;
  if (kubeConfig) {
    informer = await NamespaceInformer.create(kubeConfig, { logger });
    informer.start();
    namespaceLabels = informer;
    logger.info({ cluster: kubeConfig.getCurrentCluster()?.server }, 'namespace labels come from the cluster');
  } else {
    namespaceLabels = staticNamespaceLabels(config.namespaces);
    logger.info(
      { namespaces: Object.keys(config.namespaces).length },
      'no cluster access (neither in-cluster nor KUBECONFIG): namespace labels come from the config file',
    );
  }

  let tls: ServingCertificate;
  let certificates: CertificateFollower;
  let extraMetrics: (() => string) | undefined;
  if (certSecret !== undefined && kubeConfig) {
    const managed = new SelfManagedCertificates({
      store: await kubernetesSecretStore(kubeConfig, serviceNamespace, certSecret),
      names,
      lifetimes: {
        servingValidityMs,
        caValidityMs,
        trustPropagationMs: defaultTrustPropagationMs(servingValidityMs, caValidityMs, pollIntervalMs),
      },
      pollIntervalMs,
      logger,
    });
    const bundle = new WebhookCaBundle({
      client: await kubernetesWebhookConfigurations(kubeConfig),
      configurations: webhookConfigs,
      service: { name: serviceName(config.revision), namespace: serviceNamespace },
      bundle: { current: () => managed.current.caBundle, refresh: async () => (await managed.sync()).caBundle },
      pollIntervalMs,
      logger,
    });
    extraMetrics = () => bundle.renderMetrics();
    tls = await managed.start();
    certificates = {
      follow(app) {
        managed.onServingCertificate((next) => replaceServingCertificate(app, next));
        // At once, rather than at the next poll: the replica that rotated sets the new bundle right away.
        managed.onCaBundle(() => void bundle.reconcile());
        bundle.start();
      },
      stop() {
        managed.stop();
        bundle.stop();
      },
    };
  } else {
    const certDir = flags.values.get('cert-dir') ?? DEFAULT_CERT_DIR;
    const initial = await loadOrCreateServingCertificate({ certDir, names, logger });
    tls = initial;
    let watcher: { close(): void } | undefined;
    certificates = {
      follow(app) {
        const onChange = (next: ServingCertificate) => replaceServingCertificate(app, next);
        watcher = watchCertificateFiles({ certDir, current: initial, onChange, pollIntervalMs, logger });
      },
      stop: () => watcher?.close(),
    };
  }

  const shutdown = new AbortController();
  const app = buildApp({
    tls,
    config,
    namespaceLabels,
    logger,
    validateBootstrap: bootstrapProblems,
    shutdown: shutdown.signal,
    extraMetrics,
  });
  // Before any await: a certificate that changes from here on reaches the server.
  certificates.follow(app);
  await app.listen({ port, host: LISTEN_HOST });
  logger.info(
    { url: `https://localhost:${port}/inject`, revision: config.revision || 'default', tags: config.tags },
    `sidecar-injector serving on https://localhost:${port}`,
  );

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  shutdown.abort();
  // SIGTERM comes from the kubelet as the pod leaves the endpoints; SIGINT from someone at a terminal, who has no
  // endpoints to wait for.
  const delayMs = signal === 'SIGTERM' ? shutdownDelayMs : 0;
  logger.info({ signal, delayMs }, 'shutting down: not ready, still serving until new connections stop coming');
  await sleep(delayMs);
  certificates.stop();
  logger.info('draining open requests');
  await closeGracefully(app);
  await informer?.stop();
  logger.info('stopped');
  logger.flush();
  // The library aborts a watch only once its response has begun: a watch request to an API server that hangs
  // would keep the process alive after SIGTERM. Everything of ours is closed, so exit rather than wait for it.
  setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
}
