// The built-in `envoy` template: istio-proxy runs plain Envoy from the bootstrap we render, with no pilot-agent.
// The pod carries its bootstrap in an annotation, projected by a downwardAPI volume to the file Envoy reads, so
// admission creates no object and `kubectl get pod -o yaml` shows exactly what the proxy starts from. The
// bootstrap is checked against Envoy's schema before the pod exists; a pod it would break is refused.
//
// Without the agent there is no status port: the app's probes are not rewritten, the Prometheus merge is off (the
// pod is scraped on Envoy's 15090), and readiness is Envoy's own, on 15021.

import { InvalidBootstrapError } from '../../errors.js';
import { BOOTSTRAP_PATH, renderBootstrap } from '../bootstrap.js';
import { ANNOTATION, PORTS, PROXY_CONTAINER } from '../constants.js';
import { isObject, type Json, type JsonObject } from '../json.js';
import { own } from '../labels.js';
import { imageRef, sidecarTemplate } from './sidecar.js';
import type { PartialPod, TemplateContext } from './template.js';

/** The annotation that holds the bootstrap; the downwardAPI volume projects it to envoy-rev0.json. */
export const BOOTSTRAP_ANNOTATION = 'sidecar-injector.dev/envoy-bootstrap';
const BOOTSTRAP_VOLUME = 'istio-envoy-bootstrap';
/** The Envoy binary in Istio's proxyv2 image: upstream Envoy lacks the filters istiod pushes. */
const ENVOY_BINARY = '/usr/local/bin/envoy';
const BOOTSTRAP_DIR = BOOTSTRAP_PATH.slice(0, BOOTSTRAP_PATH.lastIndexOf('/'));
const BOOTSTRAP_FILE = BOOTSTRAP_PATH.slice(BOOTSTRAP_PATH.lastIndexOf('/') + 1);

/** What Envoy needs mounted: its bootstrap, the mesh CA that verifies istiod, and a writable data dir. */
const ENVOY_MOUNTS: JsonObject[] = [
  { mountPath: '/var/run/secrets/istio', name: 'istiod-ca-cert' },
  { mountPath: '/var/lib/istio/data', name: 'istio-data' },
  { mountPath: BOOTSTRAP_DIR, name: BOOTSTRAP_VOLUME, readOnly: true },
];

function envoyContainer(agent: JsonObject, ctx: TemplateContext, args: string[], env: JsonObject[]): JsonObject {
  const { config, settings } = ctx;
  const container: JsonObject = {
    name: PROXY_CONTAINER,
    image: imageRef(settings.proxyImage ?? config.images.proxy, config, settings.proxyImageType),
    command: [ENVOY_BINARY],
    args,
    ports: agent.ports,
    env,
  };
  for (const field of ['imagePullPolicy', 'restartPolicy', 'readinessProbe', 'startupProbe', 'resources', 'securityContext']) {
    if (agent[field] !== undefined) container[field] = agent[field];
  }
  container.volumeMounts = ENVOY_MOUNTS.map((m) => ({ ...m }));
  return container;
}

export function envoyTemplate(ctx: TemplateContext): PartialPod {
  const sidecar = sidecarTemplate(ctx);
  const { bootstrap, args, env } = renderBootstrap(ctx);
  if (ctx.validateBootstrap) {
    const problems = ctx.validateBootstrap(bootstrap);
    if (problems.length) throw new InvalidBootstrapError(problems);
  }
  const spec = sidecar.spec as JsonObject;
  const swap = (list: Json | undefined) =>
    Array.isArray(list) ? list.map((c) => (isObject(c) && c.name === PROXY_CONTAINER ? envoyContainer(c, ctx, args, env) : c)) : list;
  const volumes = (spec.volumes as JsonObject[]).filter((v) => ['istio-data', 'istiod-ca-cert'].includes(v.name as string));
  volumes.push({
    name: BOOTSTRAP_VOLUME,
    downwardAPI: { items: [{ path: BOOTSTRAP_FILE, fieldRef: { fieldPath: `metadata.annotations['${BOOTSTRAP_ANNOTATION}']` } }] },
  });
  const annotations: Record<string, string> = {
    ...sidecar.metadata?.annotations,
    [BOOTSTRAP_ANNOTATION]: JSON.stringify(bootstrap),
    [ANNOTATION.rewriteAppHTTPProbers]: 'false',
    [ANNOTATION.mergeMetrics]: 'false',
  };
  // Scraped on Envoy's own port, unless the application already says how to scrape it.
  if (own(ctx.annotations, 'prometheus.io/port') === undefined && own(ctx.annotations, 'prometheus.io/scrape') === undefined) {
    Object.assign(annotations, {
      'prometheus.io/path': '/stats/prometheus',
      'prometheus.io/port': String(PORTS.envoyPrometheus),
      'prometheus.io/scrape': 'true',
    });
  }
  return {
    metadata: { labels: sidecar.metadata?.labels, annotations },
    spec: { ...spec, initContainers: swap(spec.initContainers), containers: swap(spec.containers), volumes },
  };
}
