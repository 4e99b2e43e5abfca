// Certificate rotation while a real `serve --cert-secret` process is under load. certs-rotation.test.ts follows
// each step of a rotation with two replicas in process; this drives the process as it runs in a cluster (its own
// event loop, the Secret and the webhook configuration through the API) with many concurrent clients, on
// kept-alive connections and on a new connection per review, through a renewal of the serving certificate, a
// renewal of the CA, the move of the serving certificate to the new CA and the old CA leaving the caBundle.
// Every client trusts what the webhook configuration's caBundle holds when it connects, as the API server does.
// Not one review may fail.
//
// Lifetimes of seconds, polls every 100 ms. The 12 s serving certificate and the 36 s CA give a trust propagation
// of 2 s (serve's default for them: a sixth and an eighteenth of them), ample for the caBundle patch to land on a
// busy machine, where less than a second was not. To get through a rotation of the CA that soon, once `serve`
// runs the test puts certificates issued in the past into the Secret, as another replica would, so that the
// serving certificate falls due 3 s later and the CA 6 s later; `serve` adopts them, and the load starts. The new
// CA then signs the serving certificate 2 s after it joined the bundle, and the old CA leaves the bundle 2 s after
// that. Certificates keep whole seconds, which can shift each step by a second; the old CA's serving certificate
// has 5 s left when it is replaced.

import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CertificateAndKey, generateCertificateAuthority, issueServingCertificate } from '../src/certs/generate.js';
import { FakeKubeApi } from './helpers/fake-kube-api.js';
import { failed, type ReviewOutcome, startLoad, tally } from './helpers/load.js';
import {
  caBundleOf,
  handshake,
  NAMES,
  NAMESPACE,
  REVISION,
  SECRET_NAME,
  SERVICE,
  until,
  webhookConfiguration,
} from './helpers/self-managed.js';
import { type ServeProcess, startServe } from './helpers/serve-process.js';

const CONFIGURATION = 'sidecar-injector-canary';
const SERVERNAME = `${SERVICE.name}.${NAMESPACE}.svc`;
const SERVING_VALIDITY_MS = 12_000;
const CA_VALIDITY_MS = 36_000;
/** A certificate falls due two thirds into its life. */
const DUE_FRACTION = 2 / 3;
/** When the certificates the test puts into the Secret fall due, from when it puts them. */
const SERVING_DUE_IN_MS = 3_000;
const CA_DUE_IN_MS = 6_000;
const WORKERS = 6;
/** From the aged certificates to the old CA's removal is about 12 s; a slow machine may add a few seconds. */
const ROTATION_TIMEOUT_MS = 25_000;
/** Reviews keep coming a little after the rotation, on the final certificate. */
const AFTER_ROTATION_MS = 500;

const casIn = (bundle: string | undefined) =>
  bundle?.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];

let api: FakeKubeApi;
let scratch: string;
let serving: ServeProcess;
/** Date.now() when the aged certificates were put, when the load started and when it stopped: serve's clock. */
let agedAt: number;
let loadStartedAt: number;
let loadStoppedAt: number;
let keptAlive: ReviewOutcome[];
let fresh: ReviewOutcome[];

/** A CA and the serving certificate it signed, issued in the past so that they fall due soon. */
async function agedCertificates(): Promise<{ ca: CertificateAndKey; leaf: CertificateAndKey }> {
  const issuedAt = (validityMs: number, dueInMs: number) => new Date(Date.now() + dueInMs - DUE_FRACTION * validityMs);
  const ca = await generateCertificateAuthority(CA_VALIDITY_MS, issuedAt(CA_VALIDITY_MS, CA_DUE_IN_MS));
  const leaf = await issueServingCertificate(ca, NAMES, SERVING_VALIDITY_MS, issuedAt(SERVING_VALIDITY_MS, SERVING_DUE_IN_MS));
  return { ca, leaf };
}

/** The Secret as a replica writes it. */
function putSecret({ ca, leaf }: { ca: CertificateAndKey; leaf: CertificateAndKey }): void {
  const data = { 'ca.crt': ca.cert, 'ca.key': ca.key, 'tls.crt': leaf.cert, 'tls.key': leaf.key };
  api.putSecret({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: SECRET_NAME, namespace: NAMESPACE },
    type: 'kubernetes.io/tls',
    data: Object.fromEntries(Object.entries(data).map(([key, pem]) => [key, Buffer.from(pem).toString('base64')])),
  });
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'sidecar-injector-rotation-load-'));
  api = await FakeKubeApi.start();
  api.putWebhookConfiguration(webhookConfiguration(CONFIGURATION, [{ name: 'rev.namespace.sidecar-injector.istio.io' }]));
  const kubeconfig = join(scratch, 'kubeconfig');
  api.writeKubeconfig(kubeconfig);
  serving = await startServe(
    [
      '--revision', REVISION,
      '--cert-secret', SECRET_NAME,
      '--webhook-config', CONFIGURATION,
      '--cert-validity', `${SERVING_VALIDITY_MS}ms`,
      '--ca-validity', `${CA_VALIDITY_MS}ms`,
      '--cert-poll-interval', '100ms',
    ],
    { KUBECONFIG: kubeconfig, POD_NAMESPACE: NAMESPACE },
  );

  const aged = await agedCertificates();
  agedAt = Date.now();
  putSecret(aged);
  const agedCa = aged.ca.cert;
  const agedLeaf = new X509Certificate(aged.leaf.cert).fingerprint256;
  await until(() => caBundleOf(api, CONFIGURATION) === agedCa, 'serve to put the aged CA in the caBundle');
  await until(async () => (await handshake(serving.port, agedCa, SERVERNAME)).fingerprint === agedLeaf, 'serve to serve the aged certificate');

  const target = { port: serving.port, ca: () => caBundleOf(api, CONFIGURATION)!, servername: SERVERNAME };
  loadStartedAt = Date.now();
  const keptAliveLoad = startLoad(target, { workers: WORKERS, connections: 'keep-alive' });
  const freshLoad = startLoad(target, { workers: WORKERS, connections: 'fresh' });
  await until(
    () => {
      const cas = casIn(caBundleOf(api, CONFIGURATION));
      return cas.length === 1 && !agedCa.includes(cas[0]!);
    },
    'the old CA to leave the caBundle',
    ROTATION_TIMEOUT_MS,
  );
  await new Promise((resolve) => setTimeout(resolve, AFTER_ROTATION_MS));
  [keptAlive, fresh] = await Promise.all([keptAliveLoad.stop(), freshLoad.stop()]);
  loadStoppedAt = Date.now();
}, 60_000);

afterAll(async () => {
  if (serving?.child.exitCode === null) serving.child.kill('SIGKILL');
  await api?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe('a rotation of the serving certificate and of the CA under concurrent load', () => {
  it('fails not one review, on kept-alive connections or new ones', () => {
    expect(keptAlive.length).toBeGreaterThan(50);
    expect(fresh.length).toBeGreaterThan(50);
    expect(tally([...keptAlive, ...fresh].filter(failed))).toEqual({});
  });

  it('went through every step of a rotation while the reviews came', () => {
    const updates = serving.lines.filter((line) => line.msg === 'updated the certificate Secret' && Number(line.time) > agedAt);
    expect(updates.flatMap((line) => line.changes as string[])).toEqual([
      'renewed the serving certificate',
      'renewed the CA (the previous one stays trusted until it expires)',
      'moved the serving certificate to the new CA',
      'dropped a CA no certificate in use was signed by',
    ]);
    for (const update of updates) {
      expect(update.time as number).toBeGreaterThan(loadStartedAt);
      expect(update.time as number).toBeLessThan(loadStoppedAt);
    }
    // The aged certificate, the one renewed by the old CA and the one the new CA signed, to both kinds of client.
    expect(new Set(fresh.map((outcome) => outcome.certificate)).size).toBe(3);
    expect(new Set(keptAlive.map((outcome) => outcome.certificate)).size).toBeGreaterThanOrEqual(2);
  });
});
