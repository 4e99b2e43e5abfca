// A bad annotation value refuses the pod with every problem listed, each naming the annotation, the value and what
// is accepted, as istiod's validateAnnotations does; a pod that cannot be a Pod is refused naming the field.

import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../src/core/json.js';
import { reviewPod } from '../src/core/review-pod.js';
import { configFor, podWith } from './helpers/pods.js';

const enabled = { 'istio-injection': 'enabled' };
const refusal = (pod: JsonObject) => {
  const result = reviewPod({ pod, namespace: 'team', namespaceLabels: enabled, config: configFor('') });
  if (result.outcome !== 'refused') throw new Error(`expected a refusal, got ${result.outcome}`);
  return result.error.message;
};

describe('refused annotations', () => {
  it.each([
    ['sidecar.istio.io/interceptionMode', 'redirect', /REDIRECT, TPROXY or NONE/],
    ['status.sidecar.istio.io/port', '70000', /port 0..65535/],
    ['readiness.status.sidecar.istio.io/periodSeconds', '1s', /integer/],
    ['traffic.sidecar.istio.io/includeOutboundIPRanges', 'bad', /CIDR/],
    ['traffic.sidecar.istio.io/excludeOutboundIPRanges', '*', /CIDR/],
    ['traffic.sidecar.istio.io/includeInboundPorts', 'http', /not a port/],
    ['traffic.sidecar.istio.io/excludeInboundPorts', '1,,2', /not a port/],
    ['traffic.sidecar.istio.io/excludeOutboundPorts', '99999', /not a port/],
    ['traffic.sidecar.istio.io/excludeInterfaces', 'averyveryverylongname0', /too long/],
    ['istio.io/reroute-virtual-interfaces', '0net', /invalid characters/],
    ['sidecar.istio.io/proxyCPU', 'lots', /quantity/],
    ['sidecar.istio.io/proxyMemory', '128Mi\n', /control characters/],
  ])('%s=%j is refused with a message naming it', (annotation, value, accepted) => {
    const message = refusal(podWith({}, { [annotation]: value }));
    expect(message).toContain(`annotation ${annotation}: invalid value ${JSON.stringify(value)}`);
    expect(message).toMatch(accepted);
  });

  it('lists every bad annotation at once', () => {
    const message = refusal(
      podWith({}, { 'sidecar.istio.io/interceptionMode': 'x', 'traffic.sidecar.istio.io/excludeInboundPorts': 'y' }),
    );
    expect(message).toContain('sidecar.istio.io/interceptionMode');
    expect(message).toContain('traffic.sidecar.istio.io/excludeInboundPorts');
  });

  it.each([
    ['spec is missing', { metadata: {} }, /spec must be an object/],
    ['containers is not a list', { spec: { containers: 'app' } }, /spec.containers must be a list/],
    ['containers is empty', { spec: { containers: [] } }, /at least one container/],
    ['a container has no name', { spec: { containers: [{ image: 'x' }] } }, /spec.containers\[0\].name/],
    ['volumes holds a string', { spec: { containers: [{ name: 'a' }], volumes: ['v'] } }, /spec.volumes\[0\]/],
  ])('a pod whose %s is refused naming the field', (_case, pod, field) => {
    expect(refusal(pod as JsonObject)).toMatch(field);
  });
});
