// `sidecar-injector serve`: the admission webhook over HTTPS until SIGTERM or SIGINT, then a bounded drain.

import pino from 'pino';
import { loadConfig } from '../config/load.js';
import { UsageError } from '../errors.js';
import { clusterAccessFromEnvironment } from '../kube/cluster.js';
import { NamespaceInformer, type NamespaceLabels, staticNamespaceLabels } from '../kube/namespace-labels.js';
import { bootstrapProblems } from '../bootstrap-validation/load.js';
import { buildApp, closeGracefully } from '../server/app.js';
import { loadOrCreateServingCertificate, servingNames } from '../server/tls.js';
import { parseFlags, portFlag } from './args.js';

const DEFAULT_PORT = 9443;
const DEFAULT_CERT_DIR = './certs';
/** Where the Service lives when the pod does not say (POD_NAMESPACE from the downward API): Istio's namespace. */
const DEFAULT_SERVICE_NAMESPACE = 'istio-system';
// Every interface, IPv4 and IPv6: in a pod the API server dials the pod IP.
const LISTEN_HOST = '::';
/** How long the process may linger after shutdown for requests of the cluster client we cannot abort. */
const EXIT_GRACE_MS = 1_000;

export async function serve(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, { values: ['port', 'cert-dir', 'config', 'revision'] });
  if (flags.positional.length > 0) throw new UsageError(`unexpected argument "${flags.positional[0]}"`);
  const port = portFlag(flags.values.get('port'), DEFAULT_PORT);
  const revision = flags.values.get('revision');
  const config = loadConfig(flags.values.get('config'), revision === undefined ? {} : { revision });

  // Asynchronous writes: lines logged while a write is in flight go out together in the next one, so a busy
  // webhook does not pay a write(2) per review. pino flushes what is left when the process exits.
  const logger = pino(pino.destination({ sync: false }));

  // Before any certificate is written: a broken KUBECONFIG should leave --cert-dir as it was.
  const kubeConfig = await clusterAccessFromEnvironment();
  const tls = await loadOrCreateServingCertificate({
    certDir: flags.values.get('cert-dir') ?? DEFAULT_CERT_DIR,
    names: servingNames(config.revision, process.env.POD_NAMESPACE || DEFAULT_SERVICE_NAMESPACE),
    logger,
  });

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

  const app = buildApp({ tls, config, namespaceLabels, logger, validateBootstrap: bootstrapProblems });
  await app.listen({ port, host: LISTEN_HOST });
  logger.info(
    { url: `https://localhost:${port}/inject`, revision: config.revision || 'default', tags: config.tags },
    `sidecar-injector serving on https://localhost:${port}`,
  );

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  logger.info({ signal }, 'shutting down: draining open requests');
  await closeGracefully(app);
  await informer?.stop();
  logger.info('stopped');
  logger.flush();
  // The library aborts a watch only once its response has begun: a watch request to an API server that hangs
  // would keep the process alive after SIGTERM. Everything of ours is closed, so exit rather than wait for it.
  setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
}
