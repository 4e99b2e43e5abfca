// Every skip reason, and the reasons for injecting, each with its sentence: the answer to "why was (or wasn't)
// my pod injected?" must name the label, annotation or setting that decided it.

import { describe, expect, it } from 'vitest';
import { decide } from '../src/core/decide.js';
import { ALL_SKIP_REASONS, InjectReason, SkipReason } from '../src/core/reasons.js';
import { configFor, podWith, review } from './helpers/pods.js';

const def = configFor('');
const reasonOf = (...args: Parameters<typeof review>) => review(...args).review.decision;
const inNamespace = (pod: ReturnType<typeof podWith>, namespace: string) => {
  (pod.metadata as { namespace: string }).namespace = namespace;
  return pod;
};

describe('skip reasons', () => {
  const cases: Record<string, [ReturnType<typeof reasonOf>, RegExp]> = {
    [SkipReason.HOST_NETWORK]: [
      reasonOf(podWith({}, {}, { hostNetwork: true }), def, { 'istio-injection': 'enabled' }),
      /host network/,
    ],
    [SkipReason.IGNORED_NAMESPACE]: [
      reasonOf(inNamespace(podWith({ 'sidecar.istio.io/inject': 'true' }), 'kube-system'), def, {}, 'kube-system'),
      /kube-system is never injected/,
    ],
    [SkipReason.NAMESPACE_INJECTION_DISABLED]: [
      reasonOf(podWith({ 'sidecar.istio.io/inject': 'true' }), def, { 'istio-injection': 'disabled' }),
      /istio-injection is "disabled"/,
    ],
    [SkipReason.POD_OPTED_OUT]: [
      reasonOf(podWith({}, { 'sidecar.istio.io/inject': 'false' }), def, { 'istio-injection': 'enabled' }),
      /annotation sidecar.istio.io\/inject is "false"/,
    ],
    [SkipReason.OTHER_REVISION]: [
      reasonOf(podWith(), def, { 'istio.io/rev': 'canary' }),
      /revision canary would inject it/,
    ],
    [SkipReason.NOT_OPTED_IN]: [reasonOf(podWith(), def, {}), /neither the namespace .* nor the pod/],
    [SkipReason.NEVER_INJECT_SELECTOR]: [
      reasonOf(podWith({ batch: 'yes' }), configFor('', { neverInjectSelector: [{ matchLabels: { batch: 'yes' } }] }), {
        'istio-injection': 'enabled',
      }),
      /neverInjectSelector\[0\]/,
    ],
    [SkipReason.POLICY_DISABLED]: [
      reasonOf(podWith(), configFor('', { policy: 'disabled' }), { 'istio-injection': 'enabled' }),
      /policy is disabled/,
    ],
  };

  it('covers every reason in the fixed set', () => {
    expect(Object.keys(cases).sort()).toEqual([...ALL_SKIP_REASONS].sort());
  });

  it.each(Object.entries(cases))('%s is reported with a sentence that names its cause', (reason, [decision, sentence]) => {
    expect(decision.inject).toBe(false);
    expect(decision.reason).toBe(reason);
    expect(decision.message).toMatch(sentence);
  });
});

describe('what beats what', () => {
  it('the pod label sidecar.istio.io/inject beats the annotation, even when the label value is invalid', () => {
    const labelTrue = podWith({ 'sidecar.istio.io/inject': 'true' }, { 'sidecar.istio.io/inject': 'false' });
    expect(reasonOf(labelTrue, configFor('', { policy: 'disabled' }), { 'istio-injection': 'enabled' }).inject).toBe(true);
    const labelFalse = podWith({ 'sidecar.istio.io/inject': 'false' }, { 'sidecar.istio.io/inject': 'true' });
    expect(reasonOf(labelFalse, def, { 'istio-injection': 'enabled' }).reason).toBe(SkipReason.POD_OPTED_OUT);
    const invalidLabel = podWith({ 'sidecar.istio.io/inject': 'random' }, { 'sidecar.istio.io/inject': 'false' });
    const decision = reasonOf(invalidLabel, def, { 'istio-injection': 'enabled' });
    expect(decision.inject).toBe(true);
    expect(decision.warnings.join()).toMatch(/invalid value for sidecar.istio.io\/inject: "random"/);
  });

  it('an explicit "true" beats neverInjectSelector, and neverInjectSelector beats alwaysInjectSelector', () => {
    const selectors = {
      neverInjectSelector: [{ matchExpressions: [{ key: 'tier', operator: 'In', values: ['batch'] }] }],
      alwaysInjectSelector: [{ matchLabels: { tier: 'batch' } }],
    };
    const config = configFor('', { policy: 'disabled', ...selectors });
    expect(reasonOf(podWith({ tier: 'batch' }), config, { 'istio-injection': 'enabled' }).reason).toBe(
      SkipReason.NEVER_INJECT_SELECTOR,
    );
    expect(
      reasonOf(podWith({ tier: 'batch' }, { 'sidecar.istio.io/inject': 'true' }), config, { 'istio-injection': 'enabled' })
        .inject,
    ).toBe(true);
    const alwaysOnly = configFor('', { policy: 'disabled', alwaysInjectSelector: selectors.alwaysInjectSelector });
    expect(reasonOf(podWith({ tier: 'batch' }), alwaysOnly, { 'istio-injection': 'enabled' }).reason).toBe(
      InjectReason.ALWAYS_INJECT_SELECTOR,
    );
  });

  it('an annotation sidecar.istio.io/inject=true alone does not opt in, and the message says to use the label', () => {
    const decision = reasonOf(podWith({}, { 'sidecar.istio.io/inject': 'true' }), def, {});
    expect(decision.reason).toBe(SkipReason.NOT_OPTED_IN);
    expect(decision.message).toMatch(/use the label/);
  });

  it('manual injection ignores namespace labels and policy but honours an opt-out and the host network', () => {
    const manual = (pod: ReturnType<typeof podWith>, namespace = 'team') =>
      decide({
        namespace,
        namespaceLabels: { 'istio-injection': 'disabled' },
        metadata: pod.metadata as Record<string, unknown>,
        hostNetwork: (pod.spec as { hostNetwork?: boolean }).hostNetwork === true,
        config: configFor('', { policy: 'disabled' }),
        manual: true,
      });
    expect(manual(podWith()).reason).toBe(InjectReason.MANUAL_INJECTION);
    expect(manual(podWith({}, { 'sidecar.istio.io/inject': 'false' })).reason).toBe(SkipReason.POD_OPTED_OUT);
    expect(manual(podWith({}, {}, { hostNetwork: true })).reason).toBe(SkipReason.HOST_NETWORK);
    expect(manual(podWith(), 'kube-system').reason).toBe(SkipReason.IGNORED_NAMESPACE);
  });

  it('explains itself step by step when asked, and only then', () => {
    const explained = reasonOf(podWith(), def, { 'istio-injection': 'enabled' });
    expect(explained.steps?.at(-1)).toBe(`inject: ${explained.message}`);
    expect(explained.steps?.length).toBeGreaterThan(3);
    const quiet = decide({ namespace: 'x', namespaceLabels: {}, metadata: {}, hostNetwork: false, config: def });
    expect(quiet.steps).toBeUndefined();
  });

  it('label maps holding keys like __proto__ or constructor are read as plain data', () => {
    const labels = JSON.parse('{"__proto__": {"istio-injection": "enabled"}, "constructor": "x"}');
    const decision = reasonOf(podWith(), def, labels);
    expect(decision.reason).toBe(SkipReason.NOT_OPTED_IN);
    expect(({} as Record<string, unknown>)['istio-injection']).toBeUndefined();
  });
});
