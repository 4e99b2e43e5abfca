// Templates an operator adds in the config file, as data: a partial pod merged onto the pod, plus `eachContainer`,
// merged into every application container (what Istio's custom templates do with a range over containers).
//
//   templates:
//     spire:
//       spec:
//         containers:
//         - name: istio-proxy
//           volumeMounts: [{ name: workload-socket, mountPath: /run/secrets/workload-spiffe-uds, readOnly: true }]
//         volumes:
//         - { name: workload-socket, csi: { driver: csi.spiffe.io, readOnly: true } }
//
// Data templates need no template language: placement, naming and merging are the same strategic merge as the
// built-in templates use, and a mistake is a config validation error at start-up, not a broken pod.

import type { OperatorTemplate } from '../../config/schema.js';
import type { JsonObject } from '../json.js';
import type { PartialPod, Template } from './template.js';

export function operatorTemplate(definition: OperatorTemplate): Template {
  return (ctx): PartialPod => {
    const spec = structuredClone((definition.spec ?? {}) as JsonObject);
    if (definition.eachContainer) {
      const overlays = ctx.appContainers.map((c) => ({ ...structuredClone(definition.eachContainer as JsonObject), name: c.name }));
      const named = Array.isArray(spec.containers) ? (spec.containers as JsonObject[]) : [];
      spec.containers = [...overlays, ...named];
    }
    return { metadata: structuredClone(definition.metadata ?? {}), spec };
  };
}
