// Sidecar injection through a real kube-apiserver (issue 6): etcd, kube-apiserver and kube-controller-manager on
// loopback, our chart installed twice (the default revision and "canary") with each release's server running as a
// local process, and every assertion made on pods as the API server stored them. Only the API server shows that
// it accepts our TLS and the caBundle our server patched in, that our patches apply and the patched pods pass its
// validation, and that the chart's selectors send each pod to the right revision.
//
// Scenarios share the control plane and the two releases; each works in namespaces of its own. They run in order,
// and the last ones change the releases (a tag moves, the default server stops).

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Helm, RELEASE_NAMESPACE } from '../helm/helm.js';
import { apiMessage, Cluster, injectedRevision, istioContainers, podSpec, proxyEnv, waitFor } from './harness/cluster.js';
import { ControlPlane } from './harness/control-plane.js';
import { Release } from './harness/releases.js';

const SIDECARS = ['istio-init', 'istio-proxy'];
const ISTIOD = { default: 'istiod.istio-system.svc:15012', canary: 'istiod-canary.istio-system.svc:15012' };
/** A revision tag, as `istioctl tag set prod-stable` makes one: namespaces name the tag, never a revision. */
const TAG = 'prod-stable';

let workDir: string;
let plane: ControlPlane | undefined;
let cluster: Cluster;
let helm: Helm | undefined;
let releases: Release[] = [];
let defaultRelease: Release;
let canaryRelease: Release;
let failed = false;

/**
 * A port below the kernel's ephemeral range, free now: a server restarted later needs its port back, and an
 * outgoing connection could take an ephemeral one in between.
 */
async function freePort(taken: number[] = []): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (taken.includes(port)) continue;
    const probe = createServer();
    const free = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen(port, '::', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/**
 * Waits until a dry-run pod in the namespace is injected by the revision. Namespace labels and webhook
 * configurations reach admission through informers, a moment after they change (the API server's, and our
 * server's namespace labels); an operator's pods come long after, and the scenarios' real pods come after this.
 */
async function waitUntilInjectedBy(namespace: string, revision: string): Promise<void> {
  let last = 'no answer yet';
  try {
    await waitFor(`a dry-run pod in ${namespace} to be injected by revision ${revision}`, async () => {
      try {
        const pod = await cluster.dryRunPod(namespace, podSpec('routing-probe'));
        last = `injected by ${injectedRevision(pod) ?? 'no revision'}`;
        return injectedRevision(pod) === revision ? true : undefined;
      } catch (error) {
        last = apiMessage(error);
        return undefined;
      }
    });
  } catch (error) {
    throw new Error(`${(error as Error).message}; last dry-run pod: ${last}`);
  }
}

/** Where the proxy finds istiod: PROXY_CONFIG holds only what differs from Istio's defaults, as istiod writes it. */
function discoveryAddress(pod: V1Pod): string {
  const proxyConfig = JSON.parse(proxyEnv(pod, 'PROXY_CONFIG') ?? '{}') as { discoveryAddress?: string };
  return proxyConfig.discoveryAddress ?? ISTIOD.default;
}

function expectInjectedBy(pods: V1Pod[], revision: 'default' | 'canary'): void {
  for (const pod of pods) {
    expect(istioContainers(pod), pod.metadata?.name).toEqual(SIDECARS);
    expect(injectedRevision(pod), pod.metadata?.name).toBe(revision);
    expect(proxyEnv(pod, 'CA_ADDR'), pod.metadata?.name).toBe(ISTIOD[revision]);
    expect(discoveryAddress(pod), pod.metadata?.name).toBe(ISTIOD[revision]);
  }
}

function expectNotInjected(pod: V1Pod): void {
  expect(istioContainers(pod)).toEqual([]);
  expect(injectedRevision(pod)).toBeUndefined();
}

async function expectNotStored(namespace: string, name: string): Promise<void> {
  const read = await cluster.readPod(namespace, name).catch((error: unknown) => error);
  expect(read).toBeInstanceOf(ApiException);
  expect((read as ApiException<unknown>).code).toBe(404);
}

/** The pods, read again: same objects (uid), still as first stored. */
async function expectUnchanged(pods: V1Pod[]): Promise<void> {
  for (const pod of pods) {
    const now = await cluster.readPod(pod.metadata!.namespace!, pod.metadata!.name!);
    expect(now.metadata?.uid).toBe(pod.metadata?.uid);
    expect(now.metadata?.annotations).toEqual(pod.metadata?.annotations);
    expect(now.spec?.initContainers).toEqual(pod.spec?.initContainers);
  }
}

/**
 * Every webhook of the configuration trusts the CA the release's server keeps in its Secret. The chart renders no
 * caBundle in self-managed mode and the tests' apply sends none, so only the server can have put it there.
 */
async function expectCaBundleFrom(release: Release, configuration: string): Promise<void> {
  const secret = await cluster.core.readNamespacedSecret({ namespace: RELEASE_NAMESPACE, name: release.certificateSecret });
  const { webhooks = [] } = await cluster.admission.readMutatingWebhookConfiguration({ name: configuration });
  expect(webhooks.length).toBeGreaterThan(0);
  for (const webhook of webhooks) expect(webhook.clientConfig.caBundle, webhook.name).toBe(secret.data?.['ca.crt']);
}

const reviewsIn = (release: Release, namespace: string) =>
  release.server.reviews().filter((review) => review.namespace === namespace);

function printLogs(): void {
  const sections = [
    plane?.logs() ?? '(no control plane)',
    ...releases.map((release) => `--- ${release.name} server\n${release.server.logs()}`),
  ];
  console.error(`e2e failed; logs follow\n${sections.join('\n')}`);
}

beforeAll(async () => {
  try {
    workDir = mkdtempSync(join(tmpdir(), 'sidecar-injector-e2e-'));
    plane = new ControlPlane(join(workDir, 'control-plane'));
    cluster = Cluster.fromFile(await plane.ready());
    await cluster.createNamespace(RELEASE_NAMESPACE);

    helm = new Helm();
    const defaultPort = await freePort();
    const canaryPort = await freePort([defaultPort]);
    const serverPorts = new Map([
      ['sidecar-injector', defaultPort],
      ['sidecar-injector-canary', canaryPort],
    ]);
    defaultRelease = new Release(helm, cluster, '', defaultPort, serverPorts, workDir);
    canaryRelease = new Release(helm, cluster, 'canary', canaryPort, serverPorts, workDir);
    releases = [defaultRelease, canaryRelease];
    await Promise.all([defaultRelease.upgrade({ revisionTags: [TAG] }), canaryRelease.upgrade()]);

    // Both revisions answer (their caBundle is in place and the configurations reached admission) before any
    // scenario starts.
    await cluster.createNamespace('ready-default', { 'istio-injection': 'enabled' });
    await cluster.createNamespace('ready-canary', { 'istio.io/rev': 'canary' });
    await Promise.all([waitUntilInjectedBy('ready-default', 'default'), waitUntilInjectedBy('ready-canary', 'canary')]);
  } catch (error) {
    failed = true;
    throw error;
  }
});

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    failed = true;
  });
});

afterAll(async () => {
  if (failed) printLogs();
  await Promise.all(releases.map((release) => release.server.stop()));
  await plane?.stop();
  helm?.dispose();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe("each revision's webhook configurations", () => {
  it('trust the CA its server keeps in its Secret, patched in by the server itself', async () => {
    await expectCaBundleFrom(defaultRelease, 'sidecar-injector');
    await expectCaBundleFrom(defaultRelease, `sidecar-injector-revision-tag-${TAG}`);
    await expectCaBundleFrom(canaryRelease, 'sidecar-injector-canary');
  });
});

describe('a pod', () => {
  it('in a namespace labelled istio-injection=enabled gets istio-init and istio-proxy', async () => {
    await cluster.createNamespace('enabled', { 'istio-injection': 'enabled' });
    await waitUntilInjectedBy('enabled', 'default');

    await cluster.createPod('enabled', podSpec('app'));

    expectInjectedBy([await cluster.readPod('enabled', 'app')], 'default');
  });

  it('in an unlabelled namespace gets no sidecar', async () => {
    await cluster.createNamespace('unlabelled');

    await cluster.createPod('unlabelled', podSpec('app'));

    expectNotInjected(await cluster.readPod('unlabelled', 'app'));
  });

  it('in a namespace labelled istio-injection=disabled gets no sidecar, even labelled sidecar.istio.io/inject=true', async () => {
    await cluster.createNamespace('disabled', { 'istio-injection': 'disabled' });

    await cluster.createPod('disabled', podSpec('app', { 'sidecar.istio.io/inject': 'true' }));

    expectNotInjected(await cluster.readPod('disabled', 'app'));
  });

  it('labelled sidecar.istio.io/inject=false opts out of an enabled namespace', async () => {
    await cluster.createNamespace('opt-out', { 'istio-injection': 'enabled' });
    await waitUntilInjectedBy('opt-out', 'default');

    await cluster.createPod('opt-out', podSpec('app', { 'sidecar.istio.io/inject': 'false' }));

    expectNotInjected(await cluster.readPod('opt-out', 'app'));
  });

  it('labelled sidecar.istio.io/inject=true opts in from an unlabelled namespace', async () => {
    await cluster.createNamespace('opt-in');

    await cluster.createPod('opt-in', podSpec('app', { 'sidecar.istio.io/inject': 'true' }));

    expectInjectedBy([await cluster.readPod('opt-in', 'app')], 'default');
  });

  it('created with server-side dry run is injected and not stored, which the webhooks’ sideEffects None allows', async () => {
    await cluster.createNamespace('dry-run', { 'istio-injection': 'enabled' });
    await waitUntilInjectedBy('dry-run', 'default');

    const pod = await cluster.dryRunPod('dry-run', podSpec('app'));

    expectInjectedBy([pod], 'default');
    await expectNotStored('dry-run', 'app');
  });
});

describe("a Deployment's pods", () => {
  it('created by the controller-manager through a ReplicaSet are injected', async () => {
    await cluster.createNamespace('deployment', { 'istio-injection': 'enabled' });
    await waitUntilInjectedBy('deployment', 'default');

    await cluster.createDeployment('deployment', 'web', 2);
    const pods = await cluster.waitForDeploymentPods('deployment', 'web');

    expect(pods.map((pod) => pod.metadata?.ownerReferences?.[0]?.kind)).toEqual(['ReplicaSet', 'ReplicaSet']);
    expectInjectedBy(pods, 'default');
  });
});

describe('the canary upgrade, as an operator does it', () => {
  it('relabelling the namespace istio.io/rev=canary and restarting the Deployment gives only the new pods the canary', async () => {
    await cluster.createNamespace('upgrade', { 'istio-injection': 'enabled' });
    await waitUntilInjectedBy('upgrade', 'default');
    await cluster.createDeployment('upgrade', 'web', 2);
    const oldPods = await cluster.waitForDeploymentPods('upgrade', 'web');
    expectInjectedBy(oldPods, 'default');

    // kubectl label namespace upgrade istio-injection- istio.io/rev=canary
    await cluster.labelNamespace('upgrade', { 'istio-injection': null, 'istio.io/rev': 'canary' });
    await waitUntilInjectedBy('upgrade', 'canary');
    const defaultReviewsBefore = reviewsIn(defaultRelease, 'upgrade').length;
    const canaryReviewsBefore = reviewsIn(canaryRelease, 'upgrade').length;
    await cluster.restartDeployment('upgrade', 'web');
    const newPods = await cluster.waitForDeploymentPods('upgrade', 'web');

    expect(newPods.map((pod) => pod.metadata?.uid)).not.toContain(oldPods[0]!.metadata?.uid);
    expectInjectedBy(newPods, 'canary');
    // Without a kubelet no new pod becomes ready, so the rollout never scales the old ReplicaSet down.
    await expectUnchanged(oldPods);
    // The servers log asynchronously: once the canary's lines for the new pods are in, the default's would be too.
    await waitFor('the canary server to log its reviews', async () =>
      reviewsIn(canaryRelease, 'upgrade').length - canaryReviewsBefore >= newPods.length ? true : undefined,
    );
    expect(reviewsIn(canaryRelease, 'upgrade').length - canaryReviewsBefore).toBe(newPods.length);
    expect(reviewsIn(defaultRelease, 'upgrade').slice(defaultReviewsBefore)).toEqual([]);
  });

  it('moving a revision tag to the canary and restarting gives the new pods of the tagged namespace the canary', async () => {
    await cluster.createNamespace('tagged', { 'istio.io/rev': TAG });
    await waitUntilInjectedBy('tagged', 'default');
    await cluster.createDeployment('tagged', 'web', 2);
    const oldPods = await cluster.waitForDeploymentPods('tagged', 'web');
    expectInjectedBy(oldPods, 'default');

    // The tag's webhook configuration belongs to one release at a time, and helm does not take over another
    // release's object: the release giving the tag up goes first.
    await defaultRelease.upgrade();
    await canaryRelease.upgrade({ revisionTags: [TAG] });
    await waitUntilInjectedBy('tagged', 'canary');
    await cluster.restartDeployment('tagged', 'web');
    const newPods = await cluster.waitForDeploymentPods('tagged', 'web');

    expectInjectedBy(newPods, 'canary');
    await expectUnchanged(oldPods);
    await expectCaBundleFrom(canaryRelease, `sidecar-injector-revision-tag-${TAG}`);
  });
});

describe('a pod in an enabled namespace whose server stops', () => {
  const namespace = 'server-down';

  it('is refused under failurePolicy Fail, with the API server’s error about calling the webhook', async () => {
    await cluster.createNamespace(namespace, { 'istio-injection': 'enabled' });
    await waitUntilInjectedBy(namespace, 'default');

    await defaultRelease.server.stop();
    const refusal = await cluster.createPod(namespace, podSpec('refused')).catch((error: unknown) => error);

    expect(refusal).toBeInstanceOf(ApiException);
    const message = apiMessage(refusal);
    expect(message).toContain('failed calling webhook "namespace.sidecar-injector.istio.io": failed to call webhook');
    expect(message).toMatch(/Post "https:\/\/sidecar-injector\.istio-system\.svc:\d+\/inject\?timeout=10s": .*connection refused/);
    await expectNotStored(namespace, 'refused');
  });

  it('is admitted without sidecars under failurePolicy Ignore', async () => {
    await defaultRelease.upgrade({ webhook: { failurePolicy: 'Ignore' } });
    // The changed configuration reaches admission a moment later.
    await waitFor('failurePolicy Ignore to reach admission', () =>
      cluster.dryRunPod(namespace, podSpec('probe')).then(
        () => true,
        () => undefined,
      ),
    );

    await cluster.createPod(namespace, podSpec('admitted'));

    expectNotInjected(await cluster.readPod(namespace, 'admitted'));
  });

  it('is injected again once the server is back, with the certificate it kept in its Secret', async () => {
    await defaultRelease.startServer();

    await cluster.createPod(namespace, podSpec('after-restart'));

    expectInjectedBy([await cluster.readPod(namespace, 'after-restart')], 'default');
  });
});
