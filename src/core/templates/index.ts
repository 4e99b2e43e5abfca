// The templates a pod can ask for with inject.istio.io/templates: the built-in ones and the operator's.

import type { InjectorConfig } from '../../config/schema.js';
import { envoyTemplate } from './envoy.js';
import { gatewayTemplate } from './gateway.js';
import { grpcSimpleTemplate } from './grpc-simple.js';
import { operatorTemplate } from './operator.js';
import { sidecarTemplate } from './sidecar.js';
import type { Template } from './template.js';

const BUILT_IN: Readonly<Record<string, Template>> = {
  sidecar: sidecarTemplate,
  gateway: gatewayTemplate,
  envoy: envoyTemplate,
  'grpc-simple': grpcSimpleTemplate,
};

/** The template of that name: the operator's when the config defines one, else a built-in one. */
export function findTemplate(config: InjectorConfig, name: string): Template | undefined {
  if (Object.hasOwn(config.templates, name)) return operatorTemplate(config.templates[name] as object);
  return Object.hasOwn(BUILT_IN, name) ? BUILT_IN[name] : undefined;
}

export function templateNames(config: InjectorConfig): string[] {
  return [...new Set([...Object.keys(BUILT_IN), ...Object.keys(config.templates)])];
}
