// What a template is: a pure function from the pod's context to a partial pod, which inject.ts merges onto the
// pod with Kubernetes' strategic merge (containers, volumes and env by name). Built-in templates are TypeScript
// functions; templates an operator adds in the config file are data (operator.ts).

import type { InjectorConfig } from '../../config/schema.js';
import type { InjectionSettings } from '../annotations.js';
import type { JsonObject } from '../json.js';
import type { StringMap } from '../labels.js';

/** The workload that owns the pod, as istiod's GetDeployMetaFromPod derives it. */
export interface WorkloadRef {
  name: string;
  kind: string;
  apiVersion: string;
}

export interface TemplateContext {
  config: InjectorConfig;
  settings: InjectionSettings;
  /** The revision written to the pod: "default" for the unnamed revision. */
  revision: string;
  native: boolean;
  namespace: string;
  workload: WorkloadRef;
  labels: StringMap | undefined;
  annotations: StringMap | undefined;
  /** The pod's spec without what a previous injection added. */
  spec: JsonObject;
  /** The pod's containers without previously injected ones. */
  appContainers: JsonObject[];
  /** The uid and gid the proxy runs as: 1337, or on OpenShift the top of the namespace's range. */
  proxyUid: number;
  proxyGid: number;
  /** Envoy's schema check of a rendered bootstrap (problems, each naming its path); the edges load it. */
  validateBootstrap?: BootstrapValidation;
}

export type BootstrapValidation = (bootstrap: JsonObject) => string[];

export interface PartialPod {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: JsonObject;
}

export type Template = (ctx: TemplateContext) => PartialPod;
