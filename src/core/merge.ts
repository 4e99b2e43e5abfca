// Kubernetes strategic merge, for the parts of a pod a template touches, copy-on-write: a value the overlay does
// not change is returned as the very same object, so the diff against the received pod skips it by identity and
// the patch stays minimal.
//
// Lists with a merge key in the Kubernetes API merge item by item (containers, volumes, env and pull secrets by
// name, ports by containerPort, volumeMounts by mountPath); other lists (args, command) are replaced. Merged
// lists put the overlay's items first in its order, then the items only the base has, which is what
// apimachinery's strategic merge does and why Istio's injected volumes come before the user's.

import { isObject, type Json, type JsonObject } from './json.js';

const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  volumes: 'name',
  imagePullSecrets: 'name',
  env: 'name',
  ports: 'containerPort',
  volumeMounts: 'mountPath',
  sysctls: 'name',
};

export type NewItems = 'first' | 'last';

function mergeList(base: Json[], overlay: Json[], key: string, newItems: NewItems): Json[] {
  const keyOf = (item: Json): Json | undefined => (isObject(item) ? item[key] : undefined);
  const overlayByKey = new Map<Json, Json>();
  for (const item of overlay) {
    const k = keyOf(item);
    if (k !== undefined) overlayByKey.set(k, item);
  }
  const baseKeys = new Set(base.map(keyOf));
  // The base keeps its order, each item merged with the overlay's item of the same key.
  const kept = base.map((item) => {
    const k = keyOf(item);
    const patch = k === undefined ? undefined : overlayByKey.get(k);
    return patch === undefined ? item : (strategicMerge(item, patch, '', newItems) as Json);
  });
  const added = overlay.filter((item) => {
    const k = keyOf(item);
    return k === undefined || !baseKeys.has(k);
  });
  return newItems === 'first' ? [...added, ...kept] : [...kept, ...added];
}

/**
 * The overlay merged onto the base. Objects merge key by key, keyed lists merge by key, anything else in the
 * overlay replaces the base; `null` in the overlay deletes the key, as in a strategic merge patch. Items new to a
 * keyed list go first when a template is merged onto a pod (Istio's injected volumes precede the user's) and last
 * when a user's container is merged onto an injected one (the user's extra mounts follow the injected ones).
 */
export function strategicMerge(
  base: Json | undefined,
  overlay: Json | undefined,
  field = '',
  newItems: NewItems = 'first',
): Json | undefined {
  if (overlay === undefined) return base;
  if (Array.isArray(overlay) && Array.isArray(base) && Object.hasOwn(MERGE_KEYS, field)) {
    return mergeList(base, overlay, MERGE_KEYS[field] as string, newItems);
  }
  if (!isObject(overlay) || !isObject(base)) return overlay;
  let result: JsonObject | undefined;
  for (const key of Object.keys(overlay)) {
    const value = overlay[key];
    const current = base[key];
    const next = value === null ? undefined : strategicMerge(current, value, key, newItems);
    if (next === current) continue;
    result ??= copyOf(base);
    if (next === undefined) delete result[key];
    else defineOwn(result, key, next);
  }
  return result ?? base;
}

/**
 * A shallow copy that keeps keys like "__proto__" as plain data: spread defines own properties, where assignment
 * (and Object.assign) would run the __proto__ setter. V8 also clones the object's shape at once, ten times faster
 * than copying key by key.
 */
export function copyOf(source: JsonObject): JsonObject {
  return { ...source };
}

/** Sets a key as an own data property: plain assignment would run the __proto__ setter for that key. */
export function defineOwn(target: JsonObject, key: string, value: Json | undefined): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}
