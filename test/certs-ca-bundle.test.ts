// The caBundle of this revision's webhooks, kept equal to the self-managed CA bundle: set on start in every
// configuration named, restored when someone blanks or removes it, never touched in webhooks that call another
// Service, and counted as Istio counts it. The API server is the small fake on loopback
// (test/helpers/fake-kube-api.ts) serving MutatingWebhookConfiguration get and JSON patch with the API server's
// semantics for a failed `test` operation; a real one comes with the e2e issue.

import { afterEach, describe, expect, it } from 'vitest';
import { generateCertificateAuthority } from '../src/certs/generate.js';
import { FakeKubeApi } from './helpers/fake-kube-api.js';
import { send, type TestServer } from './helpers/https.js';
import {
  caBundleOf,
  NAMESPACE,
  type Replica,
  REVISION,
  SECRET_NAME,
  SERVICE,
  startReplica,
  until,
  webhookConfiguration,
} from './helpers/self-managed.js';

const REVISION_CONFIGURATION = `sidecar-injector-${REVISION}`;
const TAG_CONFIGURATION = 'sidecar-injector-revision-tag-prod';
const OTHER_SERVICE = { name: 'sidecar-injector-stable', namespace: NAMESPACE };
/** base64 of a bundle that belongs to another revision. */
const OTHER_BUNDLE = Buffer.from('the stable revision’s CA').toString('base64');
const WEBHOOK_POLL_MS = 100;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The revision's configuration and a tag's, the tag's also holding a webhook of another revision. */
async function clusterWithWebhooks(): Promise<FakeKubeApi> {
  const api = await FakeKubeApi.start();
  cleanups.push(() => api.close());
  api.putWebhookConfiguration(
    webhookConfiguration(REVISION_CONFIGURATION, [
      { name: 'rev.namespace.sidecar-injector.istio.io' },
      { name: 'rev.object.sidecar-injector.istio.io' },
    ]),
  );
  const tag = webhookConfiguration(TAG_CONFIGURATION, [
    { name: 'namespace.sidecar-injector.istio.io', service: OTHER_SERVICE },
    { name: 'rev.namespace.sidecar-injector.istio.io' },
  ]);
  Object.assign(tag.webhooks[0]!.clientConfig, { caBundle: OTHER_BUNDLE });
  api.putWebhookConfiguration(tag);
  return api;
}

async function replica(api: FakeKubeApi, options: Parameters<typeof startReplica>[1] = {}): Promise<Replica> {
  const started = await startReplica(api, {
    configurations: [REVISION_CONFIGURATION, TAG_CONFIGURATION],
    webhookPollMs: WEBHOOK_POLL_MS,
    ...options,
  });
  cleanups.push(() => started.close());
  return started;
}

const patches = (api: FakeKubeApi) => api.requests.filter((request) => request.method === 'PATCH');
const bundleInSecret = (api: FakeKubeApi) => api.secretData(NAMESPACE, SECRET_NAME)?.['ca.crt'];

describe('on start', () => {
  it('sets the caBundle of this revision’s webhooks in every configuration named to the Secret’s CA bundle', async () => {
    const api = await clusterWithWebhooks();
    await replica(api);
    const bundle = bundleInSecret(api);
    await until(() => caBundleOf(api, TAG_CONFIGURATION, 1) === bundle, 'the tag’s caBundle');
    expect(caBundleOf(api, REVISION_CONFIGURATION, 0)).toBe(bundle);
    expect(caBundleOf(api, REVISION_CONFIGURATION, 1)).toBe(bundle);
    // One patch per configuration, then nothing while nothing changes.
    await new Promise((resolve) => setTimeout(resolve, 3 * WEBHOOK_POLL_MS));
    expect(patches(api).map((request) => [request.path.split('/').pop(), request.status])).toEqual([
      [REVISION_CONFIGURATION, 200],
      [TAG_CONFIGURATION, 200],
    ]);
  });

  it('leaves a webhook that calls another revision’s Service as it was', async () => {
    const api = await clusterWithWebhooks();
    await replica(api);
    await until(() => caBundleOf(api, TAG_CONFIGURATION, 1) === bundleInSecret(api), 'the tag’s caBundle');
    const other = (api.webhookConfiguration(TAG_CONFIGURATION)?.webhooks as { clientConfig: { caBundle?: string } }[])[0];
    expect(other?.clientConfig.caBundle).toBe(OTHER_BUNDLE);
  });
});

describe('while running', () => {
  it('restores a caBundle someone blanked, and one a re-applied manifest removed, at its next poll', async () => {
    const api = await clusterWithWebhooks();
    await replica(api);
    const bundle = bundleInSecret(api);
    await until(() => caBundleOf(api, REVISION_CONFIGURATION, 1) === bundle, 'the first caBundle');

    const blanked = structuredClone(api.webhookConfiguration(REVISION_CONFIGURATION)!);
    (blanked.webhooks as { clientConfig: { caBundle?: string } }[])[0]!.clientConfig.caBundle = '';
    api.putWebhookConfiguration(blanked);
    await until(() => caBundleOf(api, REVISION_CONFIGURATION, 0) === bundle, 'the blanked caBundle back', 10 * WEBHOOK_POLL_MS);

    api.putWebhookConfiguration(webhookConfiguration(REVISION_CONFIGURATION, [
      { name: 'rev.namespace.sidecar-injector.istio.io' },
      { name: 'rev.object.sidecar-injector.istio.io' },
    ]));
    expect(caBundleOf(api, REVISION_CONFIGURATION, 0)).toBeUndefined();
    await until(
      () => caBundleOf(api, REVISION_CONFIGURATION, 0) === bundle && caBundleOf(api, REVISION_CONFIGURATION, 1) === bundle,
      'the removed caBundles back',
      10 * WEBHOOK_POLL_MS,
    );
  });

  it('does not patch a webhook that moved to another index after it was read, and patches it where it now is', async () => {
    const api = await clusterWithWebhooks();
    const server = await replica(api);
    const bundle = bundleInSecret(api);
    await until(() => caBundleOf(api, TAG_CONFIGURATION, 1) === bundle, 'the first caBundles');

    const held = api.hold('PATCH', new RegExp(`/${TAG_CONFIGURATION}$`));
    const blanked = structuredClone(api.webhookConfiguration(TAG_CONFIGURATION)!);
    (blanked.webhooks as { clientConfig: { caBundle?: string } }[])[1]!.clientConfig.caBundle = '';
    api.putWebhookConfiguration(blanked);
    await held.arrived;
    // While the patch for index 1 is on its way, someone reorders the webhooks.
    const reordered = structuredClone(blanked);
    reordered.webhooks = [...(blanked.webhooks as unknown[])].reverse();
    api.putWebhookConfiguration(reordered);
    held.release();

    await until(() => caBundleOf(api, TAG_CONFIGURATION, 0) === bundle, 'the caBundle at the webhook’s new index');
    expect(patches(api).map((request) => request.status).slice(-2)).toEqual([422, 200]);
    const other = (api.webhookConfiguration(TAG_CONFIGURATION)?.webhooks as { clientConfig: { caBundle?: string } }[])[1];
    expect(other?.clientConfig.caBundle).toBe(OTHER_BUNDLE);
    expect(server.caBundle.renderMetrics()).toContain(
      `webhook_patch_failures_total{name="${TAG_CONFIGURATION}",reason="webhook_update_failure"} 1`,
    );
  });

  it('adopts a newer bundle from the Secret rather than putting its own older one back', async () => {
    const api = await clusterWithWebhooks();
    // This replica reads the Secret only when a caBundle differs from its own: it has not seen the rotation below.
    const stale = await replica(api, { secretPollMs: 60_000 });
    const older = bundleInSecret(api)!;
    await until(() => caBundleOf(api, TAG_CONFIGURATION, 1) === older, 'the first caBundles');
    const patchesBefore = patches(api).length;

    // Another replica rotates: the Secret gets a second CA, and that replica sets the new bundle in the webhooks.
    const secret = structuredClone(api.secret(NAMESPACE, SECRET_NAME)!);
    const newer = older + (await generateCertificateAuthority(60 * 60_000)).cert;
    (secret.data as Record<string, string>)['ca.crt'] = Buffer.from(newer).toString('base64');
    api.putSecret(secret);
    for (const name of [REVISION_CONFIGURATION, TAG_CONFIGURATION]) {
      const configuration = structuredClone(api.webhookConfiguration(name)!);
      for (const webhook of configuration.webhooks as { clientConfig: { caBundle?: string; service: { name: string } } }[]) {
        if (webhook.clientConfig.service.name === SERVICE.name) webhook.clientConfig.caBundle = Buffer.from(newer).toString('base64');
      }
      api.putWebhookConfiguration(configuration);
    }

    await until(() => stale.certificates.current.caBundle === newer, 'the stale replica to adopt the newer bundle');
    await new Promise((resolve) => setTimeout(resolve, 3 * WEBHOOK_POLL_MS));
    expect(patches(api).length).toBe(patchesBefore);
    expect(caBundleOf(api, REVISION_CONFIGURATION, 0)).toBe(newer);
  });
});

describe('the metrics', () => {
  it('count attempts and failures by configuration and reason, as Istio’s webhook_patch_* series', async () => {
    const api = await clusterWithWebhooks();
    const server = await replica(api, { configurations: [REVISION_CONFIGURATION, 'sidecar-injector-gone'] });
    await until(() => server.caBundle.renderMetrics().includes('reason="webhook_config_not_found"'), 'a failure counted');
    const metrics = await send({ port: server.port, ca: bundleInSecret(api)! } as TestServer, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('# TYPE webhook_patch_attempts_total counter');
    expect(metrics.text).toContain(`webhook_patch_attempts_total{name="${REVISION_CONFIGURATION}"} 1`);
    expect(metrics.text).toMatch(
      /webhook_patch_failures_total\{name="sidecar-injector-gone",reason="webhook_config_not_found"\} [1-9]/,
    );
    expect(metrics.text).not.toContain(`webhook_patch_failures_total{name="${REVISION_CONFIGURATION}"`);
    // The injector's own series are still there.
    expect(metrics.text).toContain('sidecar_injection_requests_total 0');
  });
});
