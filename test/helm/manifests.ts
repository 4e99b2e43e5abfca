// Rendered manifests checked as the API server would check them, without an API server: the OpenAPI schemas of
// Kubernetes 1.3x (npm kubernetes-models, and @kubernetes-models/cert-manager for cert-manager's kinds) for types,
// required fields and enums, plus a walk for unknown fields. The schemas accept any extra key, while the API
// server's strict field validation refuses it and a lenient one drops it silently; a mis-indented line in a
// template is exactly such a key.

import * as kubernetes from '@kubernetes/client-node';
import type { LabelSelector } from '../../src/core/labels.js';

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface MutatingWebhook {
  name: string;
  clientConfig: { service?: { name: string; namespace: string; path?: string; port?: number }; caBundle?: string };
  namespaceSelector?: LabelSelector;
  objectSelector?: LabelSelector;
  failurePolicy?: string;
  timeoutSeconds?: number;
  reinvocationPolicy?: string;
  sideEffects?: string;
  admissionReviewVersions?: string[];
  rules?: { operations: string[]; apiGroups: string[]; apiVersions: string[]; resources: string[] }[];
}

export interface MutatingWebhookConfiguration extends Manifest {
  webhooks: MutatingWebhook[];
}

const CERT_MANAGER_GROUP = /\bcert-manager\.io\//;

/** Where the schema module of an apiVersion lives. */
function schemaModule(apiVersion: string): string {
  if (CERT_MANAGER_GROUP.test(apiVersion)) return `@kubernetes-models/cert-manager/${apiVersion}`;
  return `kubernetes-models/${apiVersion}`;
}

type Model = new (data: unknown) => { validate(): void };

/** What is wrong with a manifest: schema errors and unknown fields, one line each; [] when it is valid. */
export async function manifestProblems(manifest: Manifest): Promise<string[]> {
  const where = `${manifest.kind} ${manifest.metadata?.name}`;
  let module: Record<string, unknown>;
  try {
    module = await import(schemaModule(manifest.apiVersion));
  } catch {
    return [`${where}: no schema for apiVersion ${manifest.apiVersion}`];
  }
  const model = module[manifest.kind] as Model | undefined;
  if (model === undefined) return [`${where}: no schema for kind ${manifest.kind} in ${manifest.apiVersion}`];
  const problems: string[] = [];
  try {
    new model(manifest).validate();
  } catch (error) {
    problems.push(`${where}: ${(error as Error).message}`);
  }
  // cert-manager's kinds are not in the Kubernetes client's models; their schema check above is all they get.
  if (!CERT_MANAGER_GROUP.test(manifest.apiVersion)) {
    const version = manifest.apiVersion.split('/').at(-1) as string;
    const typeName = `${version[0]?.toUpperCase()}${version.slice(1)}${manifest.kind}`;
    problems.push(...unknownFields(manifest, typeName, '').map((field) => `${where}: unknown field ${field}`));
  }
  return problems;
}

interface AttributeType {
  baseName: string;
  type: string;
}

const SCALARS = new Set(['string', 'number', 'boolean', 'Date', 'IntOrString', 'any', 'object']);
const ARRAY = /^Array<(.+)>$/;
const MAP = /^\{ \[key: string\]: (.+); \}$/;

/** Paths of keys in `value` that the client's model `type` (V1Deployment, Array<V1Container>, ...) does not have. */
function unknownFields(value: unknown, type: string, path: string): string[] {
  if (value === null || value === undefined || SCALARS.has(type)) return [];
  const array = ARRAY.exec(type);
  if (array) {
    return Array.isArray(value) ? value.flatMap((item, i) => unknownFields(item, array[1] as string, `${path}[${i}]`)) : [];
  }
  const map = MAP.exec(type);
  if (map) {
    return Object.entries(value as object).flatMap(([key, item]) => unknownFields(item, map[1] as string, `${path}.${key}`));
  }
  const model = (kubernetes as unknown as Record<string, { getAttributeTypeMap?: () => AttributeType[] }>)[type];
  if (!model?.getAttributeTypeMap) throw new Error(`no client model ${type} to check ${path || 'the manifest'} against`);
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  return Object.entries(value as object).flatMap(([key, item]) => {
    const field = `${path}.${key}`;
    const attribute = attributes.get(key);
    return attribute === undefined ? [field] : unknownFields(item, attribute, field);
  });
}

export const isWebhookConfiguration = (manifest: Manifest): manifest is MutatingWebhookConfiguration =>
  manifest.kind === 'MutatingWebhookConfiguration';
