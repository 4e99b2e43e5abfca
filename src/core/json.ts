// Raw JSON as received: the core reads and patches these values and never maps them onto typed model classes,
// which would drop fields they do not know (such as restartPolicy on init containers in older models).

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json | undefined;
}

export const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Structural equality of JSON values, ignoring key order (the API server re-serialises objects in Go order). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a).filter((k) => a[k] !== undefined);
    if (keys.length !== Object.keys(b).filter((k) => b[k] !== undefined).length) return false;
    for (const k of keys) if (!Object.hasOwn(b, k) || !jsonEqual(a[k], b[k])) return false;
    return true;
  }
  return false;
}

/**
 * How deep JSON the core merges into the pod may nest: an annotation's, or a user's own istio-proxy or istio-init.
 * Pod fields nest a handful of levels (a projected volume, the deepest, about eight); JSON.stringify and the
 * recursive walks of merge and diff overflow the stack at a few thousand, which a request could otherwise reach:
 * such values are refused instead.
 */
export const MAX_MERGED_JSON_DEPTH = 64;

/** Whether arrays and objects in `value` nest more than `limit` levels; iterative, so any depth is safe to ask. */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const pending: [unknown, number][] = [[value, 1]];
  while (pending.length > 0) {
    const [item, depth] = pending.pop() as [unknown, number];
    if (typeof item !== 'object' || item === null) continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) pending.push([child, depth + 1]);
  }
  return false;
}
