// `sidecar-injector serve` as a user runs it, through the package's bin. Without cluster access: on a fresh
// --cert-dir it generates certificates, logs where the CA is and a startup line with the URL, takes namespace
// labels from the config file, answers over HTTPS verified against that CA, and on SIGTERM drains and exits 0.
// With KUBECONFIG set: namespace labels come from the cluster (here a fake API server serving only the
// namespace list, and hanging every watch before its response begins; a real one comes in a later issue).

import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdmissionReviewAnswer } from '../src/admission/encode.js';
import { applyAnswer, containerNames } from './helpers/admission.js';
import { writeFakeKubeconfig } from './helpers/fake-kube-api.js';
import { json, JSON_CONTENT_TYPE, send, type TestServer } from './helpers/https.js';
import { type ServeProcess, startServe as startServeProcess } from './helpers/serve-process.js';

const root = new URL('..', import.meta.url).pathname;
const example = readFileSync(join(root, 'examples/admission-review-v1.json'), 'utf8');
const scratch = mkdtempSync(join(tmpdir(), 'sidecar-injector-serve-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Serving extends ServeProcess {
  certDir: string;
  /** What the helpers need to call it over HTTPS, trusting the CA it generated. */
  target(): TestServer;
}

/** Starts `serve` with its own certificate folder and the given extra flags and environment. */
async function startServe(flags: string[], env: Record<string, string | undefined>): Promise<Serving> {
  const certDir = mkdtempSync(join(scratch, 'certs-'));
  const serving = await startServeProcess(['--cert-dir', certDir, ...flags], env);
  const target = () => ({ port: serving.port, ca: readFileSync(join(certDir, 'ca.crt'), 'utf8') }) as TestServer;
  return { ...serving, certDir, target };
}

const postExample = (serving: Serving, body: string) =>
  send(serving.target(), '/inject', { method: 'POST', headers: JSON_CONTENT_TYPE, body });

/** The example pod without its opt-in label, in `namespace`: only namespace labels can make it injected. */
function exampleIn(namespace: string): string {
  const review = JSON.parse(example);
  delete review.request.object.metadata.labels['sidecar.istio.io/inject'];
  review.request.namespace = namespace;
  review.request.object.metadata.namespace = namespace;
  return JSON.stringify(review);
}

describe('sidecar-injector serve without cluster access', () => {
  let serving: Serving;
  beforeAll(async () => {
    const configPath = join(scratch, 'config.yaml');
    writeFileSync(configPath, 'namespaces:\n  shop:\n    istio-injection: enabled\n');
    serving = await startServe(['--config', configPath], {});
  }, 30_000);
  afterAll(() => {
    if (serving.child.exitCode === null) serving.child.kill('SIGKILL');
  });

  it('logs where the generated CA is and the URL it serves', () => {
    expect(serving.lines).toContainEqual(expect.objectContaining({ ca: join(serving.certDir, 'ca.crt') }));
    expect(serving.lines).toContainEqual(
      expect.objectContaining({
        msg: `sidecar-injector serving on https://localhost:${serving.port}`,
        url: `https://localhost:${serving.port}/inject`,
      }),
    );
  });

  it('is healthy and ready at once, with labels from the config file', async () => {
    expect((await send(serving.target(), '/healthz')).status).toBe(200);
    expect((await send(serving.target(), '/readyz')).status).toBe(200);
  });

  it('injects the example pod, and a pod that only the config file labels opt in', async () => {
    const review = JSON.parse(example);
    const answer = json<AdmissionReviewAnswer>(await postExample(serving, example));
    expect(containerNames(applyAnswer(review.request.object, answer))).toContain('istio-proxy');
    const shop = json<AdmissionReviewAnswer>(await postExample(serving, exampleIn('shop')));
    expect(shop.response.patchType).toBe('JSONPatch');
  });

  it('drains and exits 0 on SIGTERM', async () => {
    serving.child.kill('SIGTERM');
    expect((await serving.exited).code).toBe(0);
    expect(serving.lines.map((line) => line.msg)).toContain('stopped');
  });
});

describe('sidecar-injector serve with KUBECONFIG', () => {
  let serving: Serving;
  let api: ReturnType<typeof createHttpServer>;
  beforeAll(async () => {
    api = createHttpServer((req, res) => {
      // A watch never gets its response started: the informer cannot abort such a request on stop.
      if (new URL(req.url ?? '/', 'http://fake').searchParams.get('watch') === 'true') return;
      res.writeHead(200, { 'content-type': 'application/json' });
      const shop = { metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' }, resourceVersion: '5' } };
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'NamespaceList', metadata: { resourceVersion: '5' }, items: [shop] }));
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    const kubeconfig = join(scratch, 'kubeconfig');
    writeFakeKubeconfig(kubeconfig, `http://127.0.0.1:${(api.address() as AddressInfo).port}`);
    serving = await startServe([], { KUBECONFIG: kubeconfig });
  }, 30_000);
  afterAll(async () => {
    if (serving.child.exitCode === null) serving.child.kill('SIGKILL');
    api.closeAllConnections();
    await new Promise((resolve) => api.close(resolve));
  });

  it('says the labels come from the cluster, becomes ready, and injects by the cluster namespace labels', async () => {
    expect(serving.lines).toContainEqual(expect.objectContaining({ msg: 'namespace labels come from the cluster' }));
    const deadline = performance.now() + 10_000;
    while ((await send(serving.target(), '/readyz')).status !== 200) {
      if (performance.now() > deadline) throw new Error('never ready');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const shop = json<AdmissionReviewAnswer>(await postExample(serving, exampleIn('shop')));
    expect(shop.response.patchType).toBe('JSONPatch');
  });

  it('exits 0 on SIGTERM even though its watch request hangs', async () => {
    serving.child.kill('SIGTERM');
    expect((await serving.exited).code).toBe(0);
  });
});
