// The core's one entry point: decide, then inject. The webhook, the CLI and the tests all call this, so a pod
// gets the same answer however it reaches us.

import type { InjectorConfig } from '../config/schema.js';
import { InjectorError } from '../errors.js';
import { decide, type Decision } from './decide.js';
import { inject } from './inject.js';
import { isObject, type JsonObject } from './json.js';
import type { StringMap } from './labels.js';
import type { Operation } from './patch.js';
import type { BootstrapValidation, WorkloadRef } from './templates/template.js';

export interface PodReviewInput {
  pod: unknown;
  /** The request's namespace; the pod's own metadata.namespace wins when set. */
  namespace: string;
  namespaceLabels: StringMap | undefined;
  /** Only read on OpenShift, where they carry the namespace's uid range. */
  namespaceAnnotations?: StringMap;
  config: InjectorConfig;
  /** Envoy's schema check for the envoy template's bootstraps, loaded by the edge (it reads .proto files). */
  validateBootstrap?: BootstrapValidation;
  manual?: boolean;
  workload?: WorkloadRef;
  explain?: boolean;
}

export type PodReview =
  | { outcome: 'skipped'; decision: Decision }
  | { outcome: 'injected'; decision: Decision; patch: Operation[]; status: string }
  | { outcome: 'refused'; decision: Decision; error: InjectorError };

export function reviewPod(input: PodReviewInput): PodReview {
  const pod = isObject(input.pod) ? input.pod : undefined;
  const metadata = isObject(pod?.metadata) ? (pod.metadata as JsonObject) : undefined;
  const namespace = typeof metadata?.namespace === 'string' && metadata.namespace ? metadata.namespace : input.namespace;
  const spec = isObject(pod?.spec) ? pod.spec : undefined;
  const decision = decide(
    {
      namespace,
      namespaceLabels: input.namespaceLabels,
      metadata: metadata as StringMap | undefined,
      hostNetwork: spec?.hostNetwork === true,
      config: input.config,
      manual: input.manual,
    },
    input.explain,
  );
  if (!decision.inject) return { outcome: 'skipped', decision };
  try {
    const { patch, status, warnings } = inject({
      pod: input.pod,
      namespace,
      config: input.config,
      workload: input.workload,
      namespaceAnnotations: input.namespaceAnnotations,
      validateBootstrap: input.validateBootstrap,
    });
    if (warnings.length) decision.warnings.push(...warnings);
    return { outcome: 'injected', decision, patch, status };
  } catch (error) {
    if (error instanceof InjectorError) return { outcome: 'refused', decision, error };
    throw error;
  }
}
