// The chart's rendered webhook selectors, evaluated as the API server does, for releases installed side by side:
// every pod reaches the revision Istio's selectors send it to (the truth table of istio-injector.md §2.1), never
// two webhooks, and the revision whose webhook is called is the one whose server (our core decision, fed the
// config the chart renders for it) injects the pod. So chart and server agree, label for label.

import { expect, it } from 'vitest';
import { parse } from 'yaml';
import { type InjectorConfig, resolveConfig, revisionLabel } from '../src/config/schema.js';
import { type LabelSelector, selectorMatches } from '../src/core/labels.js';
import { describeWithHelm, type Helm, RELEASE_NAMESPACE, type Release } from './helm/helm.js';
import { isWebhookConfiguration, type Manifest, type MutatingWebhook } from './helm/manifests.js';
import { podWith, review } from './helpers/pods.js';
import { TRUTH_TABLE } from './helpers/truth-table.js';

type Labels = Record<string, string>;

/** The API server sets this label on every namespace; Istio's auto webhook and our exclusions select on it. */
const NAMESPACE_NAME = 'kubernetes.io/metadata.name';
const WORKLOAD_NAMESPACE = 'team';

interface Installed {
  revision: string;
  config: InjectorConfig;
  webhooks: MutatingWebhook[];
  podTemplateLabels: Labels[];
}

function install(helm: Helm, releases: Release[]): Installed[] {
  return releases.map((release) => {
    const manifests = helm.template(release);
    const configMap = manifests.find((m) => m.kind === 'ConfigMap') as Manifest & { data: Labels };
    const config = resolveConfig(parse(configMap.data['config.yaml'] as string));
    const podTemplateLabels = manifests
      .filter((m) => m.kind === 'Deployment' || m.kind === 'Job')
      .map((m) => (m as Manifest & { spec: { template: { metadata: { labels: Labels } } } }).spec.template.metadata.labels);
    return {
      revision: revisionLabel(config),
      config,
      webhooks: manifests.filter(isWebhookConfiguration).flatMap((c) => c.webhooks),
      podTemplateLabels,
    };
  });
}

// Kubernetes: an absent or empty selector selects everything (selectorMatches follows Istio's never/always
// selectors, where an empty one selects nothing).
const selects = (selector: LabelSelector | undefined, labels: Labels) =>
  !selector || (!selector.matchExpressions?.length && !Object.keys(selector.matchLabels ?? {}).length) ||
  selectorMatches(selector, labels);

/** The revisions whose webhooks the API server calls for a pod, one entry per matching webhook. */
function calledRevisions(cluster: Installed[], namespace: string, namespaceLabels: Labels, podLabels: Labels): string[] {
  const labelsOfNamespace = { ...namespaceLabels, [NAMESPACE_NAME]: namespace };
  return cluster.flatMap(({ revision, webhooks }) =>
    webhooks
      .filter((w) => selects(w.namespaceSelector, labelsOfNamespace) && selects(w.objectSelector, podLabels))
      .map(() => revision),
  );
}

/** The revisions whose server injects the pod when it is sent to every one of them. */
function injectingRevisions(cluster: Installed[], namespaceLabels: Labels, podLabels: Labels): string[] {
  const labelsOfNamespace = { ...namespaceLabels, [NAMESPACE_NAME]: WORKLOAD_NAMESPACE };
  return cluster
    .filter(({ config }) => {
      const { review: result } = review(podWith(podLabels), config, labelsOfNamespace, WORKLOAD_NAMESPACE);
      return result.outcome === 'injected';
    })
    .map(({ revision }) => revision);
}

/** Every combination of the labels that steer injection, including values no webhook expects. */
function labelCombinations(values: Record<string, (string | undefined)[]>): Labels[] {
  return Object.entries(values).reduce<Labels[]>(
    (combinations, [key, options]) =>
      combinations.flatMap((labels) => options.map((value) => (value === undefined ? labels : { ...labels, [key]: value }))),
    [{}],
  );
}

const REVISION_VALUES = [undefined, 'default', 'canary', 'stable', 'prod-stable'];
const NAMESPACE_LABELS = labelCombinations({
  'istio-injection': [undefined, 'enabled', 'disabled'],
  'istio.io/rev': REVISION_VALUES,
});
const POD_LABELS = labelCombinations({
  'sidecar.istio.io/inject': [undefined, 'true', 'false', 'yes'],
  'istio.io/rev': REVISION_VALUES,
});

const show = (labels: Labels) => Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') || '-';

const DEFAULT_RELEASE: Release = { name: 'sidecar-injector' };
const CANARY_RELEASE: Release = { name: 'sidecar-injector-canary', values: { revision: 'canary' } };

const INSTALLS: Record<string, Release[]> = {
  'a default and a canary revision': [DEFAULT_RELEASE, CANARY_RELEASE],
  'a default revision with global injection and a canary revision': [
    { name: 'sidecar-injector', values: { enableNamespacesByDefault: true } },
    CANARY_RELEASE,
  ],
  'a default revision and a canary revision holding the tag prod-stable': [
    DEFAULT_RELEASE,
    { name: 'sidecar-injector-canary', values: { revision: 'canary', revisionTags: ['prod-stable'] } },
  ],
  'two named revisions, the canary holding the tag default': [
    { name: 'sidecar-injector-stable', values: { revision: 'stable' } },
    { name: 'sidecar-injector-canary', values: { revision: 'canary', revisionTags: ['default'] } },
  ],
};

const ISTIOD_TO_REVISION = { '': [], istiod: ['default'], 'istiod-canary': ['canary'] } as const;

describeWithHelm('the rendered webhook selectors', (helm) => {
  const clusters = Object.fromEntries(Object.entries(INSTALLS).map(([name, releases]) => [name, install(helm, releases)]));
  const defaultAndCanary = clusters['a default and a canary revision'] as Installed[];
  const globalAndCanary = clusters['a default revision with global injection and a canary revision'] as Installed[];

  it.each(TRUTH_TABLE)(
    'with a default and a canary revision, namespace labels %j and pod labels %j reach %j, as in Istio',
    (namespaceLabels, podLabels, injectedBy) => {
      const called = calledRevisions(defaultAndCanary, WORKLOAD_NAMESPACE, namespaceLabels, podLabels);
      expect(called).toEqual(ISTIOD_TO_REVISION[injectedBy]);
    },
  );

  it.each(TRUTH_TABLE)(
    'with global injection, namespace labels %j and pod labels %j reach Istio\'s revision, or the default one when nothing is labelled',
    (namespaceLabels, podLabels, injectedBy) => {
      const unlabelled = Object.keys(namespaceLabels).length === 0 && Object.keys(podLabels).length === 0;
      const called = calledRevisions(globalAndCanary, WORKLOAD_NAMESPACE, namespaceLabels, podLabels);
      expect(called).toEqual(unlabelled ? ['default'] : ISTIOD_TO_REVISION[injectedBy]);
    },
  );

  it.each(Object.keys(INSTALLS))(
    'with %s, every combination of namespace and pod labels reaches at most one webhook, of the revision whose server injects the pod',
    (installName) => {
      const cluster = clusters[installName] as Installed[];
      const disagreements: string[] = [];
      for (const namespaceLabels of NAMESPACE_LABELS) {
        for (const podLabels of POD_LABELS) {
          const called = calledRevisions(cluster, WORKLOAD_NAMESPACE, namespaceLabels, podLabels);
          const injecting = injectingRevisions(cluster, namespaceLabels, podLabels);
          if (called.length > 1 || called.join() !== injecting.join()) {
            disagreements.push(
              `namespace ${show(namespaceLabels)}, pod ${show(podLabels)}: ` +
                `webhooks of [${called}] called, servers [${injecting}] inject`,
            );
          }
        }
      }
      expect(disagreements).toEqual([]);
    },
  );

  it.each([RELEASE_NAMESPACE, 'kube-system', 'kube-node-lease'])(
    'pods in namespace %s reach no webhook, whatever the labels, so a fail-closed webhook never blocks them',
    (namespace) => {
      const cluster = [...globalAndCanary, ...defaultAndCanary];
      const reached = NAMESPACE_LABELS.flatMap((namespaceLabels) =>
        POD_LABELS.filter((podLabels) => calledRevisions(cluster, namespace, namespaceLabels, podLabels).length > 0).map(
          (podLabels) => `namespace ${show(namespaceLabels)}, pod ${show(podLabels)}`,
        ),
      );
      expect(reached).toEqual([]);
    },
  );

  it('the injector\'s own pods reach no webhook of any revision, even in a namespace labelled for injection', () => {
    const cluster = [...globalAndCanary, ...defaultAndCanary];
    const ownPods = cluster.flatMap(({ podTemplateLabels }) => podTemplateLabels);
    expect(ownPods.length).toBeGreaterThanOrEqual(4);
    const reached = NAMESPACE_LABELS.flatMap((namespaceLabels) =>
      ownPods
        .filter((podLabels) => calledRevisions(cluster, WORKLOAD_NAMESPACE, namespaceLabels, podLabels).length > 0)
        .map((podLabels) => `namespace ${show(namespaceLabels)}, pod ${show(podLabels)}`),
    );
    expect(reached).toEqual([]);
  });
});
