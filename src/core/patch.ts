// RFC 6902 operations that turn the received pod into the injected one, by diffing the two. The injected pod
// shares every untouched value with the received one (merge.ts is copy-on-write), so whole subtrees are skipped by
// identity and the cost is proportional to what changed, not to the size of the pod.
//
// Arrays: when the new array keeps the old items in order (the same object, or for named items an item of the
// same name that changed) and only inserts, each insertion is an `add` at its final index, applied in order, and
// each changed item is diffed in place. Anything else (an item removed or moved, on re-injection) replaces the
// array whole, unless it is equal to what is there.

import { isObject, jsonEqual, type Json, type JsonObject } from './json.js';

export interface Operation {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

/** RFC 6901: "~" becomes "~0" and "/" becomes "~1" in a JSON pointer segment. */
export function escapePointer(key: string): string {
  // Most keys need no escaping, and Kubernetes' label and annotation keys only the "/" of their prefix.
  if (!key.includes('~')) return key.includes('/') ? key.replaceAll('/', '~1') : key;
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

const nameOf = (item: Json | undefined) => (isObject(item) && typeof item.name === 'string' ? item.name : undefined);

function sameSlot(before: Json | undefined, after: Json | undefined): boolean {
  if (before === after) return true;
  const name = nameOf(before);
  return name !== undefined && name === nameOf(after);
}

function diffArray(path: string, before: Json[], after: Json[], ops: Operation[]): void {
  const start = ops.length;
  let kept = 0;
  for (let i = 0; i < after.length; i++) {
    if (kept < before.length && sameSlot(before[kept], after[i])) {
      // Unchanged items (most of them) are skipped before their path is built.
      if (before[kept] !== after[i]) diff(`${path}/${i}`, before[kept], after[i], ops);
      kept++;
    } else {
      ops.push({ op: 'add', path: `${path}/${i}`, value: after[i] });
    }
  }
  if (kept === before.length) return;
  ops.length = start;
  if (!jsonEqual(before, after)) ops.push({ op: 'replace', path, value: after });
}

/**
 * A key JavaScript patch appliers refuse in a path (fast-json-patch throws on "__proto__", and on "prototype"
 * after "constructor"), because assigning it would change an object's prototype. The API server would apply such
 * a path, but our patches should apply with any JSON Patch tool, JavaScript ones included.
 */
function holdsUnsafeKey(path: string, object: JsonObject): boolean {
  return Object.hasOwn(object, '__proto__') || (path.endsWith('/constructor') && Object.hasOwn(object, 'prototype'));
}

function diffObject(path: string, before: JsonObject, after: JsonObject, ops: Operation[]): void {
  // Such an object is replaced whole, so no operation's path names the key.
  if (holdsUnsafeKey(path, before) || holdsUnsafeKey(path, after)) {
    if (!jsonEqual(before, after)) ops.push({ op: 'replace', path, value: after });
    return;
  }
  for (const key of Object.keys(before)) {
    if (before[key] !== undefined && (!Object.hasOwn(after, key) || after[key] === undefined)) {
      ops.push({ op: 'remove', path: `${path}/${escapePointer(key)}` });
    }
  }
  for (const key of Object.keys(after)) {
    const value = after[key];
    if (value === undefined) continue;
    const previous = before[key];
    if (previous === value) continue;
    if (previous === undefined || !Object.hasOwn(before, key)) {
      ops.push({ op: 'add', path: `${path}/${escapePointer(key)}`, value });
    } else {
      diff(`${path}/${escapePointer(key)}`, previous, value, ops);
    }
  }
}

/** Appends to `ops` the operations that turn `before` into `after` at `path`. */
export function diff(path: string, before: Json | undefined, after: Json | undefined, ops: Operation[] = []): Operation[] {
  if (before === after) return ops;
  if (Array.isArray(before) && Array.isArray(after)) diffArray(path, before, after, ops);
  else if (isObject(before) && isObject(after)) diffObject(path, before, after, ops);
  else if (before !== after) ops.push({ op: 'replace', path, value: after });
  return ops;
}
