// Istio's webhook selector truth table (istio-injector.md §2.1, TestWebhookSelector) with a default and a canary
// revision installed side by side: for each row exactly the expected server injects, and never both.

import { describe, expect, it } from 'vitest';
import { configFor, podWith, review, statusOf } from './helpers/pods.js';
import { TRUTH_TABLE } from './helpers/truth-table.js';

const servers = { istiod: configFor(''), 'istiod-canary': configFor('canary') };

const rows = TRUTH_TABLE;

const show = (labels: Record<string, string>) =>
  Object.keys(labels).length ? Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') : '-';

describe('the webhook truth table with a default and a canary revision', () => {
  it.each(rows)('namespace %j with pod labels %j is injected by %j', (namespaceLabels, podLabels, expected) => {
    const injectedBy = Object.entries(servers)
      .filter(([, config]) => review(podWith(podLabels), config, namespaceLabels).review.outcome === 'injected')
      .map(([name]) => name);
    expect(injectedBy, `${show(namespaceLabels)} / ${show(podLabels)}`).toEqual(expected ? [expected] : []);
  });

  it.each(rows.filter((r) => r[2] !== ''))(
    'the pod in namespace %j with labels %j records its revision and talks to that istiod',
    (namespaceLabels, podLabels, expected) => {
      const config = servers[expected as keyof typeof servers];
      const { pod } = review(podWith(podLabels), config, namespaceLabels);
      const revision = expected === 'istiod' ? 'default' : 'canary';
      expect(statusOf(pod).revision).toBe(revision);
      expect((pod.metadata as { annotations: Record<string, string> }).annotations['istio.io/rev']).toBe(revision);
      const env = JSON.stringify(pod.spec);
      expect(env).toContain(`"CA_ADDR","value":"${expected}.istio-system.svc:15012"`);
    },
  );

  it('global injection opts in unlabelled namespaces but not disabled ones or pods that say anything', () => {
    const global = configFor('', { enableNamespacesByDefault: true });
    expect(review(podWith(), global, {}).review.outcome).toBe('injected');
    expect(review(podWith(), global, { 'istio-injection': 'disabled' }).review.outcome).toBe('skipped');
    expect(review(podWith(), global, { 'istio.io/rev': 'canary' }).review.outcome).toBe('skipped');
    expect(review(podWith({ 'sidecar.istio.io/inject': 'false' }), global, {}).review.outcome).toBe('skipped');
  });

  it('a server answering for a tag injects pods that select the tag, writing its own revision', () => {
    const tagged = configFor('canary', { tags: ['prod-stable'] });
    const { review: result, pod } = review(podWith(), tagged, { 'istio.io/rev': 'prod-stable' });
    expect(result.outcome).toBe('injected');
    expect(statusOf(pod).revision).toBe('canary');
    // The pod's own istio.io/rev label (a tag) is left as it was; the annotation names the revision.
    const tagPod = review(podWith({ 'istio.io/rev': 'prod-stable' }), tagged, {}).pod;
    expect((tagPod.metadata as { labels: Record<string, string> }).labels['istio.io/rev']).toBe('prod-stable');
  });

  it('a canary server holding the default tag answers the legacy istio-injection=enabled selector', () => {
    const defaultTag = configFor('canary', { tags: ['default'] });
    expect(review(podWith(), defaultTag, { 'istio-injection': 'enabled' }).review.outcome).toBe('injected');
  });
});
