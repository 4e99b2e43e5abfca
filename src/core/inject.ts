// Injection, as istiod's RunTemplate and postProcessPod do it (istio-injector.md §1.4), on the raw pod:
//
//   strip a previous injection → apply the selected templates → re-apply the user's own istio-proxy/istio-init
//   → Prometheus merge → probe rewriting → status annotation → Istio's container order → diff into a patch.
//
// Every step works copy-on-write over the received pod, so the final diff only visits what changed. A pod is
// never mapped onto model classes, which would drop fields they do not know.

import type { InjectorConfig } from '../config/schema.js';
import { revisionLabel } from '../config/schema.js';
import { AnnotationError, InvalidPodError } from '../errors.js';
import { parseBool, readSettings } from './annotations.js';
import { ANNOTATION, INIT_CONTAINER, LABEL, PORTS, PROXY_CONTAINER, PROXY_UID, VALIDATION_CONTAINER } from './constants.js';
import { isObject, type Json, type JsonObject } from './json.js';
import { own, type StringMap } from './labels.js';
import { copyOf, defineOwn, strategicMerge } from './merge.js';
import { applyOverrides, takeOverrides } from './overrides.js';
import { diff, type Operation } from './patch.js';
import { prometheusMerge } from './prometheus.js';
import { appProbersEnv, type AppProbers, rewriteProbes } from './probes.js';
import { meshProxyConfig } from './proxy-config.js';
import { findTemplate, templateNames } from './templates/index.js';
import { istiodAddress } from './templates/sidecar.js';
import type { BootstrapValidation, PartialPod, Template, TemplateContext, WorkloadRef } from './templates/template.js';
import { workloadOf } from './workload.js';

export interface InjectInput {
  /** The pod exactly as received (raw JSON). */
  pod: unknown;
  /** The pod's effective namespace (the request's namespace when the pod has none). */
  namespace: string;
  config: InjectorConfig;
  /** The workload named in the proxy's metadata; derived from owner references when absent. */
  workload?: WorkloadRef;
  /** The namespace's annotations: on OpenShift they carry the uid range the proxy must run in. */
  namespaceAnnotations?: StringMap;
  /** Checks bootstraps the envoy template renders; without it they are not checked. */
  validateBootstrap?: BootstrapValidation;
}

export interface InjectResult {
  /** Empty when the pod already is what injection would make it. */
  patch: Operation[];
  /** The sidecar.istio.io/status value written to the pod. */
  status: string;
  /** Accepted but ignored or deprecated settings, for the AdmissionResponse warnings. */
  warnings: string[];
}

interface PriorInjection {
  containers: Set<string>;
  volumes: Set<string>;
  pullSecrets: Set<string>;
}

/** Names added by a previous injection, from its status annotation; an unparseable status counts as none. */
function priorInjection(annotations: StringMap | undefined): PriorInjection {
  const prior: PriorInjection = { containers: new Set(), volumes: new Set(), pullSecrets: new Set() };
  const status = own(annotations, ANNOTATION.status);
  if (status === undefined || !status.startsWith('{')) return prior;
  let parsed: unknown;
  try {
    parsed = JSON.parse(status);
  } catch {
    return prior;
  }
  if (!isObject(parsed)) return prior;
  const names = (key: string) => (Array.isArray(parsed[key]) ? parsed[key].filter((n) => typeof n === 'string') : []);
  for (const n of [...names('containers'), ...names('initContainers')]) prior.containers.add(n as string);
  for (const n of names('volumes')) prior.volumes.add(n as string);
  for (const n of names('imagePullSecrets')) prior.pullSecrets.add(n as string);
  return prior;
}

/**
 * Istio's status annotation records every container the templates rendered, and templates that merge into each
 * application container (grpc-simple, an operator's eachContainer) render the application's own containers too.
 * Stripping those on re-injection would delete the application, so only the containers the templates add
 * themselves, what they render for a pod without application containers, count as injected; the proxy always does.
 */
function keepApplicationContainers(
  prior: PriorInjection,
  containers: JsonObject[],
  templates: Template[],
  base: Omit<TemplateContext, 'spec' | 'appContainers'>,
): void {
  const added = new Set<string>([PROXY_CONTAINER]);
  for (const template of templates) {
    const rendered = template({ ...base, spec: { containers: [] }, appContainers: [] }).spec?.containers;
    if (Array.isArray(rendered)) for (const container of rendered) added.add(nameOf(container));
  }
  for (const container of containers) {
    const name = container.name as string;
    if (prior.containers.has(name) && !added.has(name)) prior.containers.delete(name);
  }
}

/** A list field of the pod spec: absent or null is empty; anything else must be a list of objects. */
function listField(spec: JsonObject, field: string, requireName: boolean): JsonObject[] | undefined {
  const value = spec[field];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new InvalidPodError(`spec.${field} must be a list`);
  for (const [i, item] of value.entries()) {
    if (!isObject(item)) throw new InvalidPodError(`spec.${field}[${i}] must be an object`);
    if (requireName && typeof item.name !== 'string') throw new InvalidPodError(`spec.${field}[${i}].name must be a string`);
  }
  return value as JsonObject[];
}

const nameOf = (item: Json | undefined) => (isObject(item) ? (item.name as string) : '');
const names = (items: Json | undefined) => (Array.isArray(items) && items.length ? items.map(nameOf) : null);

/** OpenShift runs pods as the top uid (and gid) of the namespace's assigned range, "start/size". */
function openshiftIds(namespaceAnnotations: StringMap | undefined): { uid: number; gid: number } | undefined {
  const top = (range: string | undefined) => {
    const match = range === undefined ? null : /^([0-9]+)\/([0-9]+)$/.exec(range.split(',')[0]?.trim() ?? '');
    return match ? Number(match[1]) + Number(match[2]) - 1 : undefined;
  };
  const uid = top(own(namespaceAnnotations, 'openshift.io/sa.scc.uid-range'));
  if (uid === undefined) return undefined;
  return { uid, gid: top(own(namespaceAnnotations, 'openshift.io/sa.scc.supplemental-groups')) ?? uid };
}

/** istiod's reorderPod: where injected containers sit relative to the user's (istio-injector.md §6.3). */
function reorder(spec: JsonObject, native: boolean, holdFirst: boolean): void {
  const init = (spec.initContainers as JsonObject[] | undefined) ?? [];
  const pick = (list: JsonObject[], name: string) => list.filter((c) => c.name === name);
  const others = (list: JsonObject[], ...excluded: string[]) => list.filter((c) => !excluded.includes(c.name as string));
  if (init.length) {
    spec.initContainers = native
      ? [...pick(init, VALIDATION_CONTAINER), ...pick(init, INIT_CONTAINER), ...pick(init, PROXY_CONTAINER), ...others(init, VALIDATION_CONTAINER, INIT_CONTAINER, PROXY_CONTAINER)]
      : [...pick(init, VALIDATION_CONTAINER), ...others(init, VALIDATION_CONTAINER, INIT_CONTAINER), ...pick(init, INIT_CONTAINER)];
  }
  const containers = (spec.containers as JsonObject[] | undefined) ?? [];
  if (containers.some((c) => c.name === PROXY_CONTAINER)) {
    spec.containers = holdFirst
      ? [...pick(containers, PROXY_CONTAINER), ...others(containers, PROXY_CONTAINER)]
      : [...others(containers, PROXY_CONTAINER), ...pick(containers, PROXY_CONTAINER)];
  }
}

/**
 * A template naming a container that an earlier template put in the other list (istio-proxy is an init container
 * when native) is meant for that container: its overlay is moved there, where istiod would add a second,
 * invalid container of the same name.
 */
function retarget(out: PartialPod, spec: JsonObject): PartialPod {
  const overlay = out.spec;
  if (!overlay) return out;
  const namesIn = (list: Json | undefined) => new Set(Array.isArray(list) ? list.map(nameOf) : []);
  const inInit = namesIn(spec.initContainers);
  const inContainers = namesIn(spec.containers);
  const moved: JsonObject = copyOf(overlay);
  let changed = false;
  for (const [from, to, there, notHere] of [
    ['containers', 'initContainers', inInit, inContainers],
    ['initContainers', 'containers', inContainers, inInit],
  ] as const) {
    const list = moved[from];
    if (!Array.isArray(list)) continue;
    const go = list.filter((c) => there.has(nameOf(c)) && !notHere.has(nameOf(c)));
    if (!go.length) continue;
    changed = true;
    moved[from] = list.filter((c) => !go.includes(c));
    moved[to] = [...((moved[to] as Json[] | undefined) ?? []), ...go];
  }
  return changed ? { ...out, spec: moved } : out;
}

const findTemplateOutputProxy = (spec: JsonObject) =>
  [spec.initContainers, spec.containers].some((list) => Array.isArray(list) && list.some((c) => isObject(c) && c.name === PROXY_CONTAINER));

function envValue(container: JsonObject | undefined, name: string): string | undefined {
  const env = Array.isArray(container?.env) ? container.env : [];
  const entry = env.find((e) => isObject(e) && e.name === name) as JsonObject | undefined;
  return typeof entry?.value === 'string' ? entry.value : undefined;
}

function setEnv(container: JsonObject, name: string, value: string): JsonObject {
  // A user's istio-proxy may carry anything in its env; entries that are not objects are left for the API server.
  const env = Array.isArray(container.env) ? (container.env as Json[]) : [];
  const out = copyOf(container);
  out.env = [...env.filter((e) => !(isObject(e) && e.name === name)), { name, value }];
  return out;
}

function updateProxy(spec: JsonObject, update: (proxy: JsonObject) => JsonObject): void {
  for (const field of ['initContainers', 'containers'] as const) {
    const list = spec[field];
    if (!Array.isArray(list)) continue;
    const index = list.findIndex((c) => isObject(c) && c.name === PROXY_CONTAINER);
    if (index < 0) continue;
    const copy = [...list];
    copy[index] = update(list[index] as JsonObject);
    spec[field] = copy;
    return;
  }
}

export function inject(input: InjectInput): InjectResult {
  const { pod, config, namespace } = input;
  if (!isObject(pod)) throw new InvalidPodError('the object must be a Pod (a JSON object)');
  if (pod.metadata !== undefined && pod.metadata !== null && !isObject(pod.metadata)) {
    throw new InvalidPodError('metadata must be an object');
  }
  const metadata = isObject(pod.metadata) ? pod.metadata : undefined;
  if (!isObject(pod.spec)) throw new InvalidPodError('spec must be an object');
  const receivedSpec = pod.spec;
  const containers = listField(receivedSpec, 'containers', true);
  if (!containers || containers.length === 0) throw new InvalidPodError('spec.containers must list at least one container');
  const initContainers = listField(receivedSpec, 'initContainers', true);
  const volumes = listField(receivedSpec, 'volumes', true);
  const pullSecrets = listField(receivedSpec, 'imagePullSecrets', false);
  const labels = isObject(metadata?.labels) ? (metadata.labels as StringMap) : undefined;
  const annotations = isObject(metadata?.annotations) ? (metadata.annotations as StringMap) : undefined;

  const settings = readSettings(annotations, config, meshProxyConfig(config, istiodAddress(config)));
  const native = settings.nativeSidecar ?? config.nativeSidecars;
  const revision = revisionLabel(config);
  const templates = settings.templates ?? config.defaultTemplates;
  const chosen = templates.map((name) => {
    const template = findTemplate(config, name);
    if (!template) {
      throw new AnnotationError([
        `annotation ${ANNOTATION.templates}: requested template "${name}" not found; have ${templateNames(config).join(', ')}`,
      ]);
    }
    return template;
  });

  // 1. Strip what a previous injection added, and set aside the user's own istio-proxy/istio-init: they are
  //    overrides, merged on top of what the templates render.
  const prior = priorInjection(annotations);
  const ids = config.platform === 'openshift' ? openshiftIds(input.namespaceAnnotations) : undefined;
  const base = {
    config,
    settings,
    revision,
    native,
    namespace,
    workload: input.workload ?? workloadOf(metadata),
    labels,
    annotations,
    proxyUid: ids?.uid ?? PROXY_UID,
    proxyGid: ids?.gid ?? PROXY_UID,
  };
  if (prior.containers.size) keepApplicationContainers(prior, containers, chosen, base);
  // Probes and scrape settings of a re-injected pod already point at the agent; what the agent knew of the
  // originals comes along.
  const priorProxy = prior.containers.has(PROXY_CONTAINER)
    ? [...containers, ...(initContainers ?? [])].find((c) => c.name === PROXY_CONTAINER)
    : undefined;
  const priorProbers = envValue(priorProxy, 'ISTIO_KUBE_APP_PROBERS');
  const priorScrape = envValue(priorProxy, 'ISTIO_PROMETHEUS_ANNOTATIONS');
  const overrides = takeOverrides(annotations, containers, initContainers ?? [], prior.containers);
  const keep = (c: JsonObject) => !prior.containers.has(c.name as string) && !overrides.names.has(c.name as string);
  const spec: JsonObject = copyOf(receivedSpec);
  const appContainers = containers.filter(keep);
  spec.containers = appContainers;
  if (initContainers) spec.initContainers = initContainers.filter(keep);
  if (volumes) spec.volumes = volumes.filter((v) => !prior.volumes.has(v.name as string));
  if (pullSecrets) spec.imagePullSecrets = pullSecrets.filter((s) => !prior.pullSecrets.has(s.name as string));
  const podLabels: JsonObject = labels ? copyOf(labels as JsonObject) : {};
  const podAnnotations: JsonObject = annotations ? copyOf(annotations as JsonObject) : {};
  delete podAnnotations[ANNOTATION.status];

  // 2. Templates, each merged onto the pod in turn; what they render is recorded for the status annotation.
  const ctx: TemplateContext = { ...base, spec, appContainers, validateBootstrap: input.validateBootstrap };
  let merged: JsonObject = { metadata: { labels: podLabels, annotations: podAnnotations }, spec };
  let rendered: JsonObject = { spec: {} };
  for (const template of chosen) {
    const out: PartialPod = retarget(template(ctx), merged.spec as JsonObject);
    merged = strategicMerge(merged, out as Json) as JsonObject;
    rendered = strategicMerge(rendered, out as Json) as JsonObject;
  }
  const renderedSpec = rendered.spec as JsonObject;
  let finalSpec = copyOf(merged.spec as JsonObject);
  const finalMetadata = merged.metadata as { labels: JsonObject; annotations: JsonObject };
  const finalAnnotations = copyOf(finalMetadata.annotations);

  // 3. The user's own istio-proxy / istio-init win over the rendered ones, field by field.
  finalSpec = applyOverrides(finalSpec, renderedSpec, overrides, finalAnnotations, {
    interceptionMode: settings.interceptionMode,
    cni: config.cni.enabled,
    openshift: config.platform === 'openshift',
    appContainers,
  });

  // Templates may set annotations that steer post-processing (Istio's custom templates turn off the metrics merge
  // or probe rewriting this way), so from here on the merged annotations are read.
  const flag = (name: string, fallback: boolean) => {
    const value = own(finalAnnotations as StringMap, name);
    return (value === undefined ? undefined : parseBool(value)) ?? fallback;
  };

  // 4. Prometheus merge: the pod is scraped through the agent.
  const mergeMetrics = flag(ANNOTATION.mergeMetrics, config.mesh.enablePrometheusMerge);
  const scrape = prometheusMerge(finalAnnotations as StringMap, mergeMetrics);
  if (typeof scrape === 'string') throw new AnnotationError([scrape]);
  if (scrape) {
    for (const name of scrape.remove) delete finalAnnotations[name];
    Object.assign(finalAnnotations, scrape.set);
    if (scrape.env !== undefined) updateProxy(finalSpec, (p) => setEnv(p, 'ISTIO_PROMETHEUS_ANNOTATIONS', scrape.env as string));
  } else if (mergeMetrics && priorScrape !== undefined && own(finalAnnotations as StringMap, 'prometheus.io/port') === String(PORTS.agentStatus)) {
    // Merged already: the pod's own scrape settings survive only in the previous proxy's env.
    updateProxy(finalSpec, (p) => setEnv(p, 'ISTIO_PROMETHEUS_ANNOTATIONS', priorScrape));
  }

  // 5. Probes of the application point at the agent.
  if (flag(ANNOTATION.rewriteAppHTTPProbers, config.rewriteAppHTTPProbe) && settings.statusPort !== 0) {
    const probers: AppProbers = {};
    for (const field of ['initContainers', 'containers'] as const) {
      const list = finalSpec[field];
      if (Array.isArray(list)) finalSpec[field] = rewriteProbes(list as JsonObject[], settings.statusPort, probers);
    }
    if (Object.keys(probers).length || priorProbers !== undefined) {
      updateProxy(finalSpec, (p) => {
        // The previous injection's record, then the value of a user's own istio-proxy, which wins when readable.
        const value = appProbersEnv(probers, [priorProbers, envValue(p, 'ISTIO_KUBE_APP_PROBERS')]);
        return value === undefined ? p : setEnv(p, 'ISTIO_KUBE_APP_PROBERS', value);
      });
    }
  }

  // 6. Metadata, then Istio's order of containers. The pod's network (its own label, else the config's) is put
  //    on the pod and, last in the env, on the proxy, as istiod's overwriteClusterInfo does.
  const network = own(labels, LABEL.network) || config.mesh.network;
  if (network && findTemplateOutputProxy(renderedSpec)) {
    finalMetadata.labels = { ...finalMetadata.labels, [LABEL.network]: network };
    updateProxy(finalSpec, (p) => setEnv(p, 'ISTIO_META_NETWORK', network));
  }
  const status = JSON.stringify({
    initContainers: names(renderedSpec.initContainers),
    containers: names(renderedSpec.containers),
    volumes: names(renderedSpec.volumes),
    imagePullSecrets: names(renderedSpec.imagePullSecrets),
    revision,
  });
  for (const [key, value] of Object.entries(config.injectedAnnotations)) defineOwn(finalAnnotations, key, value);
  finalAnnotations[ANNOTATION.status] = status;
  const hold = !native && (settings.proxyConfig.holdApplicationUntilProxyStarts === true || config.proxy.holdApplicationUntilProxyStarts);
  reorder(finalSpec, native, hold);

  // 7. The patch: the received pod against the injected one. Lists the received pod did not have and the
  //    injection left empty are not added.
  for (const field of ['initContainers', 'volumes', 'imagePullSecrets'] as const) {
    if (receivedSpec[field] === undefined && Array.isArray(finalSpec[field]) && (finalSpec[field] as Json[]).length === 0) {
      delete finalSpec[field];
    }
  }
  const receivedMetadata = metadata ?? {};
  const finalPodMetadata = copyOf(receivedMetadata);
  finalPodMetadata.labels = finalMetadata.labels;
  finalPodMetadata.annotations = finalAnnotations;
  const patch = metadata ? diff('/metadata', metadata, finalPodMetadata) : [{ op: 'add' as const, path: '/metadata', value: finalPodMetadata }];
  diff('/spec', receivedSpec, finalSpec, patch);
  return { patch, status, warnings: settings.warnings };
}
