// Whether this server injects a pod, which revision applies, and why.
//
// Istio splits this decision in two: the MutatingWebhookConfiguration's selectors pick which revision's webhook is
// called (istio-injector.md §2), then istiod's injectRequired applies host network, ignored namespaces, the
// sidecar.istio.io/inject label or annotation, the never/always selectors and the policy (§1.5). We evaluate both
// halves here from the namespace labels, so the answer is right even when a webhook configuration routes too
// widely, and so `check` can explain a pod the API server never sent us.

import type { InjectorConfig } from '../config/schema.js';
import { revisionLabel } from '../config/schema.js';
import { ANNOTATION, DEFAULT_REVISION, IGNORED_NAMESPACES, LABEL } from './constants.js';
import { own, selectorMatches, type StringMap } from './labels.js';
import { InjectReason, type Reason, SkipReason } from './reasons.js';

export interface DecideInput {
  /** The pod's namespace (the request's namespace when the pod has none). */
  namespace: string;
  /** The namespace's labels; undefined when the namespace is unknown (treated as unlabelled). */
  namespaceLabels: StringMap | undefined;
  /** Pod metadata as received (raw JSON); only labels and annotations are read. */
  metadata: StringMap | undefined;
  hostNetwork: boolean;
  config: InjectorConfig;
  /**
   * Manual injection (`sidecar-injector inject`), as istioctl kube-inject: a manifest carries no namespace labels,
   * so only host network, ignored namespaces and an explicit opt-out are considered.
   */
  manual?: boolean;
}

export interface Decision {
  inject: boolean;
  reason: Reason;
  /** One readable sentence saying why. */
  message: string;
  /**
   * The revision (or tag) the webhook selectors route this pod to; "" when none would. On a skip for
   * other_revision it names the revision that would inject the pod.
   */
  revision: string;
  /** Problems worth telling the user about that do not change the outcome (AdmissionResponse warnings). */
  warnings: string[];
  /** Every step taken, in order; only filled when asked for (it costs allocations on the hot path). */
  steps?: string[];
}

const labelsOf = (metadata: StringMap | undefined) => metadata?.labels as StringMap | undefined;
const annotationsOf = (metadata: StringMap | undefined) => metadata?.annotations as StringMap | undefined;

/** Whether this server answers for a revision or tag value found in an istio.io/rev label. */
export function answersFor(config: InjectorConfig, value: string): boolean {
  return value === revisionLabel(config) || config.tags.includes(value);
}

interface Route {
  target: string;
  reason: InjectReason;
  message: string;
}

export function decide(input: DecideInput, explain = false): Decision {
  const steps: string[] | undefined = explain ? [] : undefined;
  const warnings: string[] = [];
  // steps?.push(...) below: without `explain`, the explanation's strings are never built.
  const finish = (inject: boolean, reason: Reason, message: string, revision: string): Decision => {
    steps?.push(`${inject ? 'inject' : 'skip'}: ${message}`);
    return steps ? { inject, reason, message, revision, warnings, steps } : { inject, reason, message, revision, warnings };
  };
  const { config, namespace, metadata } = input;
  const podLabels = labelsOf(metadata);
  const podAnnotations = annotationsOf(metadata);

  if (input.hostNetwork) {
    return finish(false, SkipReason.HOST_NETWORK, 'the pod uses the host network (spec.hostNetwork: true)', '');
  }
  steps?.push('spec.hostNetwork is not set');
  if (IGNORED_NAMESPACES.has(namespace)) {
    return finish(false, SkipReason.IGNORED_NAMESPACE, `namespace ${namespace} is never injected`, '');
  }
  steps?.push(`namespace ${namespace || '(none)'} is not one of ${[...IGNORED_NAMESPACES].join(', ')}`);

  // The sidecar.istio.io/inject label wins over the annotation whenever it is present, even with a bad value.
  const injectLabel = own(podLabels, LABEL.inject);
  const explicit = injectLabel ?? own(podAnnotations, ANNOTATION.inject);
  const explicitSource = injectLabel !== undefined ? 'label' : 'annotation';
  if (explicit !== undefined && explicit !== '' && explicit !== 'true' && explicit !== 'false') {
    warnings.push(
      `invalid value for sidecar.istio.io/inject: ${JSON.stringify(explicit)}; only "true" and "false" are accepted, the default policy applies`,
    );
  }

  let route: Route;
  if (input.manual) {
    if (explicit === 'false') {
      return finish(false, SkipReason.POD_OPTED_OUT, `the pod ${explicitSource} sidecar.istio.io/inject is "false"`, '');
    }
    steps?.push('manual injection: namespace labels, selectors and policy do not apply');
    return finish(
      true,
      InjectReason.MANUAL_INJECTION,
      'manual injection injects every pod that does not opt out',
      revisionLabel(config),
    );
  } else {
    const routed = routeToRevision(input.namespaceLabels, podLabels, podAnnotations, config, steps);
    if ('skip' in routed) return finish(false, routed.skip, routed.message, '');
    route = routed;
  }

  if (!answersFor(config, route.target)) {
    return finish(
      false,
      SkipReason.OTHER_REVISION,
      `${route.message}, which revision ${revisionLabel(config)}${
        config.tags.length ? ` (tags ${config.tags.join(', ')})` : ''
      } does not serve: revision ${route.target} would inject it`,
      route.target,
    );
  }
  steps?.push(`this server answers for ${route.target === revisionLabel(config) ? `revision ${route.target}` : `tag ${route.target} of revision ${revisionLabel(config)}`}`);

  // istiod's injectRequired: explicit value, then never/always selectors, then policy.
  if (explicit === 'false') {
    return finish(false, SkipReason.POD_OPTED_OUT, `the pod ${explicitSource} sidecar.istio.io/inject is "false"`, route.target);
  }
  if (explicit === 'true') {
    steps?.push(`the pod ${explicitSource} sidecar.istio.io/inject is "true", so selectors and policy do not apply`);
    return finish(true, route.reason, route.message, route.target);
  }
  const never = config.neverInjectSelector.findIndex((s) => selectorMatches(s, podLabels));
  if (never >= 0) {
    return finish(
      false,
      SkipReason.NEVER_INJECT_SELECTOR,
      `the pod labels match neverInjectSelector[${never}]`,
      route.target,
    );
  }
  const always = config.alwaysInjectSelector.findIndex((s) => selectorMatches(s, podLabels));
  if (always >= 0) {
    steps?.push(`the pod labels match alwaysInjectSelector[${always}]`);
    return finish(
      true,
      InjectReason.ALWAYS_INJECT_SELECTOR,
      `${route.message}, and the pod labels match alwaysInjectSelector[${always}]`,
      route.target,
    );
  }
  if (config.policy === 'disabled') {
    return finish(
      false,
      SkipReason.POLICY_DISABLED,
      `${route.message}, but the policy is disabled and the pod does not set sidecar.istio.io/inject: "true"`,
      route.target,
    );
  }
  steps?.push('the policy is enabled');
  return finish(true, route.reason, route.message, route.target);
}

type Skip = { skip: SkipReason; message: string };

/** The webhook selectors of istio-injector.md §2.3–2.5, evaluated for every revision at once. */
function routeToRevision(
  namespaceLabels: StringMap | undefined,
  podLabels: StringMap | undefined,
  podAnnotations: StringMap | undefined,
  config: InjectorConfig,
  steps: string[] | undefined,
): Route | Skip {
  const injection = own(namespaceLabels, LABEL.injection);
  const namespaceRev = own(namespaceLabels, LABEL.rev);
  const podInject = own(podLabels, LABEL.inject);
  const podRev = own(podLabels, LABEL.rev);
  const optedOut: Skip = { skip: SkipReason.POD_OPTED_OUT, message: 'the pod label sidecar.istio.io/inject is "false"' };

  if (injection !== undefined) {
    if (injection !== 'enabled') {
      return {
        skip: SkipReason.NAMESPACE_INJECTION_DISABLED,
        message: `the namespace label istio-injection is "${injection}" (only "enabled" enables injection)`,
      };
    }
    if (namespaceRev !== undefined) steps?.push(`namespace label istio-injection=enabled wins over istio.io/rev=${namespaceRev}`);
    if (podInject === 'false') return optedOut;
    return {
      target: DEFAULT_REVISION,
      reason: InjectReason.NAMESPACE_INJECTION_ENABLED,
      message: 'the namespace label istio-injection=enabled selects the default revision',
    };
  }
  if (namespaceRev !== undefined) {
    if (podInject === 'false') return optedOut;
    return {
      target: namespaceRev,
      reason: InjectReason.NAMESPACE_REVISION,
      message: `the namespace label istio.io/rev=${namespaceRev} selects revision ${namespaceRev}`,
    };
  }
  steps?.push('the namespace has neither istio-injection nor istio.io/rev');
  if (podInject === 'false') return optedOut;
  if (podRev !== undefined) {
    return {
      target: podRev,
      reason: InjectReason.POD_REVISION,
      message: `the pod label istio.io/rev=${podRev} selects revision ${podRev}`,
    };
  }
  if (podInject === 'true') {
    return {
      target: DEFAULT_REVISION,
      reason: InjectReason.POD_OPTED_IN,
      message: 'the pod label sidecar.istio.io/inject=true selects the default revision',
    };
  }
  if (config.enableNamespacesByDefault && podInject === undefined) {
    return {
      target: DEFAULT_REVISION,
      reason: InjectReason.GLOBAL_INJECTION,
      message: 'global injection (enableNamespacesByDefault) selects the default revision for unlabelled namespaces',
    };
  }
  const hint =
    own(podAnnotations, ANNOTATION.inject) === 'true'
      ? '; the annotation sidecar.istio.io/inject=true does not opt in, because webhook selectors see labels only: use the label'
      : '';
  return {
    skip: SkipReason.NOT_OPTED_IN,
    message: `neither the namespace (istio-injection=enabled or istio.io/rev) nor the pod (label istio.io/rev or sidecar.istio.io/inject=true) opts in${hint}`,
  };
}

