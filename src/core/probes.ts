// Probe rewriting (istio-injector.md §6.1): with mTLS, the kubelet cannot reach the application's probe ports
// through the proxy, so HTTP, TCP and gRPC probes and lifecycle hooks are pointed at the agent's status port
// under /app-health/<container>/<kind>, and the agent learns the originals from ISTIO_KUBE_APP_PROBERS.

import { PROXY_CONTAINER } from './constants.js';
import { isObject, type Json, type JsonObject } from './json.js';
import { copyOf } from './merge.js';

const PROBES: ReadonlyArray<[field: string, suffix: string]> = [
  ['readinessProbe', 'readyz'],
  ['livenessProbe', 'livez'],
  ['startupProbe', 'startupz'],
];
const HOOKS: ReadonlyArray<[field: string, suffix: string]> = [
  ['preStop', 'prestopz'],
  ['postStart', 'poststartz'],
];

export type AppProbers = Record<string, JsonObject>;

/** A named port resolved through the container's ports; undefined when the name is not declared. */
function resolvePort(port: Json | undefined, container: JsonObject): number | undefined {
  if (typeof port === 'number') return port;
  if (typeof port !== 'string') return undefined;
  if (/^[0-9]+$/.test(port)) return Number(port);
  const ports = Array.isArray(container.ports) ? container.ports : [];
  const found = ports.find((p) => isObject(p) && p.name === port) as JsonObject | undefined;
  return typeof found?.containerPort === 'number' ? found.containerPort : undefined;
}

/** The agent's record of one original probe: Go's Prober struct, fields in its order. */
function prober(handler: JsonObject, container: JsonObject, statusPort: number): JsonObject | undefined {
  const out: JsonObject = {};
  for (const kind of ['httpGet', 'tcpSocket', 'grpc'] as const) {
    const action = handler[kind];
    if (!isObject(action)) continue;
    const port = resolvePort(action.port, container);
    if (port === undefined || port === statusPort) return undefined;
    if (kind === 'httpGet') {
      // HTTPGetAction field order: path, port, host, scheme, httpHeaders.
      const get: JsonObject = {};
      if (action.path) get.path = action.path;
      get.port = port;
      if (action.host) get.host = action.host;
      if (action.scheme) get.scheme = action.scheme;
      if (Array.isArray(action.httpHeaders) && action.httpHeaders.length) get.httpHeaders = action.httpHeaders;
      out.httpGet = get;
    } else if (kind === 'tcpSocket') {
      out.tcpSocket = action.host ? { host: action.host, port } : { port };
    } else {
      out.grpc = action.service !== undefined ? { port, service: action.service } : { port };
    }
    if (typeof handler.timeoutSeconds === 'number' && handler.timeoutSeconds > 0) out.timeoutSeconds = handler.timeoutSeconds;
    return out;
  }
  return undefined;
}

/** The probe pointed at the agent; other fields (thresholds, periods) are kept. */
function redirected(handler: JsonObject, path: string, statusPort: number): JsonObject {
  const out = copyOf(handler);
  const wasHttps = isObject(handler.httpGet) && handler.httpGet.scheme === 'HTTPS';
  delete out.tcpSocket;
  delete out.grpc;
  out.httpGet = wasHttps ? { path, port: statusPort, scheme: 'HTTP' } : { path, port: statusPort };
  return out;
}

/**
 * Rewrites one container's probes and hooks; returns the container (the same object when nothing changed) and
 * adds the originals to `probers`.
 */
function rewriteContainer(container: JsonObject, statusPort: number, probers: AppProbers): JsonObject {
  let out: JsonObject | undefined;
  const name = container.name as string;
  for (const [field, suffix] of PROBES) {
    const probe = container[field];
    if (!isObject(probe)) continue;
    const original = prober(probe, container, statusPort);
    if (!original) continue;
    const path = `/app-health/${name}/${suffix}`;
    probers[path] = original;
    out ??= copyOf(container);
    out[field] = redirected(probe, path, statusPort);
  }
  const lifecycle = container.lifecycle;
  if (isObject(lifecycle)) {
    let hooks: JsonObject | undefined;
    for (const [field, suffix] of HOOKS) {
      const hook = lifecycle[field];
      if (!isObject(hook) || !(isObject(hook.httpGet) || isObject(hook.tcpSocket))) continue;
      const original = prober(hook, container, statusPort);
      if (!original) continue;
      const path = `/app-lifecycle/${name}/${suffix}`;
      probers[path] = original;
      hooks ??= copyOf(lifecycle);
      hooks[field] = redirected(hook, path, statusPort);
    }
    if (hooks) {
      out ??= copyOf(container);
      out.lifecycle = hooks;
    }
  }
  return out ?? container;
}

/** Rewrites every container but istio-proxy; the same array when nothing changed. */
export function rewriteProbes(containers: JsonObject[], statusPort: number, probers: AppProbers): JsonObject[] {
  let changed = false;
  const out = containers.map((c) => {
    if (c.name === PROXY_CONTAINER) return c;
    const rewritten = rewriteContainer(c, statusPort, probers);
    if (rewritten !== c) changed = true;
    return rewritten;
  });
  return changed ? out : containers;
}

/**
 * ISTIO_KUBE_APP_PROBERS: keys sorted; entries of existing values win over the new probers (re-injection keeps what
 * the agent knew), later values over earlier ones. An unreadable value adds nothing: a user's garbage must not erase
 * the previous injection's record.
 */
export function appProbersEnv(probers: AppProbers, earlier: readonly (string | undefined)[]): string | undefined {
  let merged: Record<string, Json> = { ...probers };
  for (const existing of earlier) {
    if (!existing) continue;
    try {
      const previous = JSON.parse(existing) as unknown;
      if (isObject(previous)) merged = { ...merged, ...(previous as Record<string, Json>) };
    } catch {
      // Unreadable: ignored.
    }
  }
  const keys = Object.keys(merged).sort();
  if (keys.length === 0) return undefined;
  const sorted: Record<string, Json> = {};
  for (const k of keys) sorted[k] = merged[k] as Json;
  return JSON.stringify(sorted);
}
