// Where the pods are in a manifest: the kinds istioctl kube-inject knows (Istio's injectScheme, looked up by kind
// name whatever the apiVersion, istio-injector.md §7) and where each keeps its pod template. A List is searched
// item by item, recursively. Any other kind holds no pod we inject.

import { isObject, type JsonObject } from '../core/json.js';
import type { WorkloadRef } from '../core/templates/template.js';
import { workloadOf } from '../core/workload.js';
import { InputError } from '../errors.js';

export interface PodTemplate {
  kind: string;
  /** The name (or generateName) of the object that holds the pod; "" when it has neither. */
  name: string;
  /** The namespace the manifest puts the pod in: its own metadata.namespace, else its holder's; "" for neither. */
  namespace: string;
  /** The workload the proxy reports as its owner. */
  workload: WorkloadRef;
  /** The object with `metadata` and `spec`: the Pod itself or the pod template, changed in place by injection. */
  pod: JsonObject;
}

const TEMPLATE_PATHS: Record<string, readonly string[]> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  Job: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  DeploymentConfig: ['spec', 'template'],
  // Istio's kube-inject writes a CronJob's labels and annotations onto spec.jobTemplate.metadata, where no pod
  // ever sees them; the pods are made from spec.jobTemplate.spec.template, so that is what we inject.
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

const text = (value: unknown) => (typeof value === 'string' ? value : '');

/** The pod templates of one document, in order. `source` names the file in errors. */
export function findPodTemplates(value: unknown, source: string): PodTemplate[] {
  const found: PodTemplate[] = [];
  collect(value, source, found);
  return found;
}

function collect(value: unknown, source: string, found: PodTemplate[]): void {
  if (!isObject(value)) return;
  const kind = text(value.kind);
  if (kind === 'List') {
    if (Array.isArray(value.items)) for (const item of value.items) collect(item, source, found);
    return;
  }
  const path = Object.hasOwn(TEMPLATE_PATHS, kind) ? TEMPLATE_PATHS[kind] : undefined;
  if (!path) return;
  const metadata = isObject(value.metadata) ? value.metadata : undefined;
  const name = text(metadata?.name) || text(metadata?.generateName);
  let pod: unknown = value;
  for (const key of path) pod = isObject(pod) ? pod[key] : undefined;
  if (!isObject(pod)) throw new InputError(`${source}: ${kind}/${name}: ${path.join('.')} must be an object`);
  const workload: WorkloadRef =
    kind === 'Pod' ? workloadOf(metadata) : { name, kind, apiVersion: text(value.apiVersion) };
  const namespace = (isObject(pod.metadata) && text(pod.metadata.namespace)) || text(metadata?.namespace);
  found.push({ kind, name, namespace, workload, pod });
}
