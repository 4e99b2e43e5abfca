// A pod may declare istio-proxy or istio-init itself to override parts of them (istio-injector.md §6.4): the
// user's container is merged field by field on top of what the template renders ("image: auto" keeps the
// injected image), and is recorded in proxy.istio.io/overrides so that a later re-injection applies it again.

import { InvalidPodError } from '../errors.js';
import { ANNOTATION, INIT_CONTAINER, PROXY_CONTAINER, VALIDATION_CONTAINER } from './constants.js';
import { isObject, type Json, type JsonObject, MAX_MERGED_JSON_DEPTH, nestedDeeperThan } from './json.js';
import { own, type StringMap } from './labels.js';
import { copyOf, strategicMerge } from './merge.js';

const OVERRIDABLE: ReadonlySet<string> = new Set([PROXY_CONTAINER, INIT_CONTAINER, VALIDATION_CONTAINER]);

export interface Overrides {
  /** Containers set aside from the pod because they override injected ones. */
  names: Set<string>;
  /** The overlay for each overridden container, in the pod's order. */
  overlays: Map<string, JsonObject>;
  /** Where each set-aside container came from, to put it back if no template renders it. */
  origin: Map<string, 'containers' | 'initContainers'>;
  /** True when the pod carries a previous injection's record, which is then kept as it is. */
  recorded: boolean;
}

/** The user's overlay: the container as declared, without "image: auto". */
function overlayOf(container: JsonObject): JsonObject {
  if (container.image !== 'auto') return container;
  const overlay = copyOf(container);
  delete overlay.image;
  return overlay;
}

export function takeOverrides(
  annotations: StringMap | undefined,
  containers: JsonObject[],
  initContainers: JsonObject[],
  previouslyInjected: Set<string>,
): Overrides {
  const overrides: Overrides = { names: new Set(), overlays: new Map(), origin: new Map(), recorded: false };
  const recorded = own(annotations, ANNOTATION.overrides);
  if (recorded !== undefined && recorded.startsWith('{')) {
    try {
      const parsed = JSON.parse(recorded) as unknown;
      if (isObject(parsed) && !nestedDeeperThan(parsed, MAX_MERGED_JSON_DEPTH)) {
        for (const field of ['containers', 'initContainers'] as const) {
          const list = parsed[field];
          if (!Array.isArray(list)) continue;
          for (const c of list) {
            if (!isObject(c) || typeof c.name !== 'string') continue;
            overrides.recorded = true;
            // The record also holds the application containers a template merged into, as istiod writes it.
            // They stay as the pod has them now (re-injection keeps them, see inject.ts): merging the recorded
            // originals over them would undo the user's later edits.
            if (OVERRIDABLE.has(c.name)) overrides.overlays.set(c.name, c);
          }
        }
      }
    } catch {
      // A damaged record is ignored: the pod's own containers are used instead.
    }
  }
  for (const [field, list] of [['containers', containers], ['initContainers', initContainers]] as const) {
    for (const c of list) {
      const name = c.name as string;
      if (!OVERRIDABLE.has(name) || previouslyInjected.has(name)) continue;
      overrides.names.add(name);
      overrides.origin.set(name, field);
      // The record holds only what a template rendered; a container of the user's that none renders is its own
      // overlay, re-injection or not.
      if (overrides.overlays.has(name)) continue;
      if (nestedDeeperThan(c, MAX_MERGED_JSON_DEPTH)) {
        throw new InvalidPodError(`spec.${field}: container ${name} is nested deeper than ${MAX_MERGED_JSON_DEPTH} levels`);
      }
      overrides.overlays.set(name, overlayOf(c));
    }
  }
  return overrides;
}

const nameOf = (item: Json) => (isObject(item) && typeof item.name === 'string' ? item.name : undefined);

function findIn(spec: JsonObject, name: string): ['containers' | 'initContainers', number] | undefined {
  for (const field of ['initContainers', 'containers'] as const) {
    const list = spec[field];
    if (!Array.isArray(list)) continue;
    const index = list.findIndex((c) => isObject(c) && c.name === name);
    if (index >= 0) return [field, index];
  }
  return undefined;
}

function replaceAt(spec: JsonObject, field: 'containers' | 'initContainers', index: number, value: JsonObject): void {
  const list = [...(spec[field] as JsonObject[])];
  list[index] = value;
  spec[field] = list;
}

/** istio-iptables' -u follows the uid the user's istio-proxy runs as, so that uid's traffic is not captured. */
function withIptablesUid(init: JsonObject, uid: number): JsonObject {
  const args = Array.isArray(init.args) ? [...(init.args as Json[])] : [];
  const at = args.indexOf('-u');
  if (at < 0 || at + 1 >= args.length) return init;
  args[at + 1] = String(uid);
  const out = copyOf(init);
  out.args = args;
  return out;
}

/**
 * Applies the overlays onto the injected containers; returns the spec (copied where changed) and records the
 * overlays in `annotations` on a first injection.
 */
export interface OverrideOptions {
  interceptionMode: string;
  cni: boolean;
  openshift: boolean;
  appContainers: JsonObject[];
}

/**
 * An application container a template also renders (an operator template adding env to every container) is, to
 * istiod, an override too: it is recorded as declared, so re-injection starts again from the user's version.
 */
function recordAppContainers(rendered: JsonObject, appContainers: JsonObject[], record: Record<'containers' | 'initContainers', JsonObject[]>): void {
  const byName = new Map(appContainers.map((c) => [c.name, c]));
  const list = rendered.containers;
  if (!Array.isArray(list)) return;
  for (const item of list) {
    const app = byName.get(nameOf(item));
    if (app) record.containers.push(app);
  }
}

/** On OpenShift, a proxy uid copied from the application is dropped, so the namespace's assigned uid is used. */
function withoutAppUid(overlay: JsonObject, appContainers: JsonObject[]): JsonObject {
  const security = overlay.securityContext;
  if (!isObject(security) || typeof security.runAsUser !== 'number') return overlay;
  const appUids = appContainers.map((c) => (isObject(c.securityContext) ? c.securityContext.runAsUser : undefined));
  if (!appUids.includes(security.runAsUser)) return overlay;
  const out = copyOf(overlay);
  const trimmed = copyOf(security);
  delete trimmed.runAsUser;
  out.securityContext = trimmed;
  return out;
}

export function applyOverrides(
  spec: JsonObject,
  rendered: JsonObject,
  overrides: Overrides,
  annotations: JsonObject,
  options: OverrideOptions,
): JsonObject {
  const { interceptionMode, cni } = options;
  const record: { containers: JsonObject[]; initContainers: JsonObject[] } = { containers: [], initContainers: [] };
  if (!overrides.recorded) recordAppContainers(rendered, options.appContainers, record);
  if (overrides.overlays.size === 0 && overrides.names.size === 0) {
    writeRecord(record, annotations);
    return spec;
  }
  if (options.openshift) {
    for (const [name, overlay] of overrides.overlays) overrides.overlays.set(name, withoutAppUid(overlay, options.appContainers));
  }
  const out = copyOf(spec);
  // In the order the templates rendered them, which is the order the record keeps.
  for (const field of ['initContainers', 'containers'] as const) {
    const list = rendered[field];
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      const name = nameOf(item);
      const overlay = name === undefined ? undefined : overrides.overlays.get(name);
      const at = name === undefined ? undefined : findIn(out, name);
      if (!overlay || !at) continue;
      const [where, index] = at;
      replaceAt(out, where, index, strategicMerge((out[where] as JsonObject[])[index], overlay, '', 'last') as JsonObject);
      record[field].push(overlay);
    }
  }
  // A user's container that no template renders stays where the user put it.
  for (const name of overrides.names) {
    if (findIn(out, name)) continue;
    const field = overrides.origin.get(name) ?? 'containers';
    out[field] = [...((out[field] as JsonObject[] | undefined) ?? []), overrides.overlays.get(name) as JsonObject];
  }

  const proxyOverlay = overrides.overlays.get(PROXY_CONTAINER);
  const security = isObject(proxyOverlay?.securityContext) ? proxyOverlay.securityContext : undefined;
  const uid = typeof security?.runAsUser === 'number' ? security.runAsUser : undefined;
  const gid = typeof security?.runAsGroup === 'number' ? security.runAsGroup : undefined;
  if (uid !== undefined && uid !== 0) {
    const init = findIn(out, cni ? VALIDATION_CONTAINER : INIT_CONTAINER);
    if (init) {
      const [field, index] = init;
      let container = withIptablesUid((out[field] as JsonObject[])[index] as JsonObject, uid);
      if (cni) {
        container = strategicMerge(container, { securityContext: { runAsUser: uid, runAsGroup: gid ?? uid } }) as JsonObject;
      }
      replaceAt(out, field, index, container);
    }
  }
  if (interceptionMode === 'TPROXY' && uid !== undefined) {
    // TPROXY needs the proxy to run as root to set IP_TRANSPARENT, whatever the user asked for.
    const proxy = findIn(out, PROXY_CONTAINER);
    if (proxy) {
      const [field, index] = proxy;
      replaceAt(out, field, index, strategicMerge((out[field] as JsonObject[])[index], { securityContext: { runAsUser: 0 } }) as JsonObject);
    }
  }
  if (!overrides.recorded) writeRecord(record, annotations);
  return out;
}

function writeRecord(record: Record<'containers' | 'initContainers', JsonObject[]>, annotations: JsonObject): void {
  if (!record.containers.length && !record.initContainers.length) return;
  const value: JsonObject = {};
  if (record.containers.length) value.containers = record.containers;
  if (record.initContainers.length) value.initContainers = record.initContainers;
  annotations[ANNOTATION.overrides] = JSON.stringify(value);
}
