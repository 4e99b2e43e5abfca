// Prometheus metrics merge (istio-injector.md §4.3): the pod is scraped at the agent's status port, which serves
// Envoy's and the application's metrics together; the application's own scrape settings move to the agent in
// ISTIO_PROMETHEUS_ANNOTATIONS.

import { PORTS } from './constants.js';
import type { StringMap } from './labels.js';

/** Ports the agent and Envoy own: scraping them through the merge would loop or expose internals. */
const RESERVED_PORTS: Readonly<Record<number, string>> = {
  15000: 'Envoy admin',
  15001: 'outbound capture',
  15004: 'agent debug',
  15006: 'inbound capture',
  15008: 'HBONE',
  15020: 'merged metrics',
  15021: 'health checks',
  15053: 'DNS proxy',
  15090: 'Envoy metrics',
};

/** Prometheus turns annotation names into label names by replacing anything but [a-zA-Z0-9_] with "_". */
const sanitize = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, '_');

interface ScrapeTarget {
  port: string;
  path: string;
}

export interface PrometheusMerge {
  /** Annotation names to remove (every spelling of the scrape settings). */
  remove: string[];
  /** Annotations to set. */
  set: Record<string, string>;
  /** ISTIO_PROMETHEUS_ANNOTATIONS, when the pod had scrape settings of its own. */
  env: string | undefined;
}

function checkPort(port: string, what: string): string | undefined {
  if (!/^[0-9]+$/.test(port) || Number(port) > 65535) return `invalid prometheus ${what}: invalid port "${port}"`;
  const reason = RESERVED_PORTS[Number(port)];
  if (Number(port) === PORTS.agentStatus) return `invalid prometheus ${what}: port ${port} conflicts with agent port`;
  if (reason) return `invalid prometheus ${what}: port ${port} is reserved for Istio (${reason}) and cannot be scraped`;
  return undefined;
}

/**
 * What the merge changes, or undefined when it does not apply (disabled, scrape false, already merged); a string
 * when the pod's scrape settings are invalid.
 */
export function prometheusMerge(annotations: StringMap | undefined, enabled: boolean): PrometheusMerge | undefined | string {
  if (!enabled) return undefined;
  const found: Record<string, string> = {};
  const names: string[] = [];
  for (const name of Object.keys(annotations ?? {})) {
    const value = (annotations as StringMap)[name];
    if (typeof value !== 'string') continue;
    const key = sanitize(name);
    if (key === 'prometheus_io_scrape' || key === 'prometheus_io_port' || key === 'prometheus_io_path' || key === 'prometheus_istio_io_scrape_targets') {
      found[key] = value;
      names.push(name);
    }
  }
  if (found.prometheus_io_scrape !== undefined && ['false', 'False', 'FALSE', 'f', 'F', '0'].includes(found.prometheus_io_scrape)) {
    return undefined;
  }
  if (found.prometheus_io_port === String(PORTS.agentStatus)) return undefined;

  let targets: ScrapeTarget[] | undefined;
  const targetsText = found.prometheus_istio_io_scrape_targets;
  if (targetsText !== undefined) {
    targets = [];
    for (const item of targetsText.split(',')) {
      const [port = '', ...rest] = item.trim().split(':');
      const path = rest.join(':') || '/metrics';
      const problem = checkPort(port, 'scrape targets');
      if (problem) return problem;
      targets.push({ port, path });
    }
  }
  if (found.prometheus_io_port !== undefined) {
    const problem = checkPort(found.prometheus_io_port, 'scrape configuration');
    if (problem) return problem;
  }
  let env: string | undefined;
  if (names.length > 0) {
    const original: Record<string, unknown> = {};
    if (found.prometheus_io_scrape !== undefined) original.scrape = found.prometheus_io_scrape;
    const first = targets?.[0];
    const path = found.prometheus_io_path ?? first?.path;
    const port = found.prometheus_io_port ?? first?.port;
    if (path !== undefined) original.path = path;
    if (port !== undefined) original.port = port;
    if (targets) original.targets = targets;
    env = JSON.stringify(original);
  }
  return {
    remove: names,
    set: {
      'prometheus.io/path': '/stats/prometheus',
      'prometheus.io/port': String(PORTS.agentStatus),
      'prometheus.io/scrape': 'true',
    },
    env,
  };
}

