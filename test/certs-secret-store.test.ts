// Self-managed certificates shared through one Secret: replicas starting together agree on one CA because the API
// server lets exactly one create win, and replicas rotating together agree because an update carries the
// resourceVersion it read. The API server here is a small fake on loopback with the API server's 409 semantics
// (test/helpers/fake-kube-api.ts); a real one comes with the e2e issue. Requests are held at a barrier so that
// the replicas really race instead of happening to run one after the other.

import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TlsError } from '../src/errors.js';
import {
  type CertificateSecretStore,
  kubernetesSecretStore,
  type ManagedCertificates,
  planCertificates,
  SelfManagedCertificates,
} from '../src/kube/certificate-secret.js';
import { errorLine, runCli } from './helpers/cli.js';
import { FakeKubeApi } from './helpers/fake-kube-api.js';
import {
  caBundleOf,
  handshake,
  LONG_LIFETIMES,
  NAMES,
  NAMESPACE,
  type Replica,
  SECRET_NAME,
  startReplica,
  until,
  webhookConfiguration,
} from './helpers/self-managed.js';
import { type ServeProcess, startServe } from './helpers/serve-process.js';

const SECRETS = /\/secrets/;
const quietLogger = pino({ level: 'silent' });
const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;
const certificatesIn = (bundle: string) => bundle.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;

const secretDataOf = (certificates: ManagedCertificates): Record<string, string> => ({
  'ca.crt': certificates.caBundle,
  'ca.key': certificates.caKey,
  'tls.crt': certificates.cert,
  'tls.key': certificates.key,
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function fakeApi(): Promise<FakeKubeApi> {
  const api = await FakeKubeApi.start();
  cleanups.push(() => api.close());
  return api;
}

async function replica(api: FakeKubeApi, options: Parameters<typeof startReplica>[1] = {}): Promise<Replica> {
  const started = await startReplica(api, options);
  cleanups.push(() => started.close());
  return started;
}

const statuses = (api: FakeKubeApi, method: string) =>
  api.requests.filter((request) => request.method === method && SECRETS.test(request.path)).map((request) => request.status);

describe('two replicas starting together against one Secret store', () => {
  it('agree on one CA: one create wins, the other gets 409 AlreadyExists, reads the winner’s and serves it', async () => {
    const api = await fakeApi();
    api.barrier(2, 'POST', SECRETS);
    const [a, b] = await Promise.all([replica(api), replica(api)]);

    expect(statuses(api, 'POST').sort()).toEqual([201, 409]);
    const stored = api.secretData(NAMESPACE, SECRET_NAME)!;
    expect(api.secret(NAMESPACE, SECRET_NAME)?.type).toBe('kubernetes.io/tls');
    expect(Object.keys(stored).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(certificatesIn(stored['ca.crt']!)).toBe(1);
    for (const server of [a, b]) {
      expect(server.certificates.current.caBundle).toBe(stored['ca.crt']);
      const shown = await handshake(server.port, stored['ca.crt']!);
      expect(shown).toMatchObject({ trusted: true, fingerprint: fingerprintOf(stored['tls.crt']!) });
    }
    // The loser said what happened, in words an operator can act on.
    const loser = [a, b].find((server) => server.logs.some((line) => line.msg.startsWith('another replica wrote')));
    expect(loser).toBeDefined();
  });

  it('agree on one CA as real `serve` processes, and set it as the caBundle of their webhooks', async () => {
    const api = await fakeApi();
    const webhooks = [{ name: 'rev.namespace.sidecar-injector.istio.io' }];
    api.putWebhookConfiguration(webhookConfiguration('sidecar-injector-canary', webhooks));
    api.barrier(2, 'POST', SECRETS);
    const scratch = mkdtempSync(join(tmpdir(), 'sidecar-injector-secret-store-'));
    cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
    const kubeconfig = join(scratch, 'kubeconfig');
    api.writeKubeconfig(kubeconfig);
    const flags = ['--revision', 'canary', '--cert-secret', SECRET_NAME, '--webhook-config', 'sidecar-injector-canary'];
    const env = { KUBECONFIG: kubeconfig, POD_NAMESPACE: NAMESPACE };
    const processes: ServeProcess[] = await Promise.all([startServe(flags, env), startServe(flags, env)]);
    cleanups.push(() => {
      for (const serving of processes) serving.child.kill('SIGKILL');
    });

    expect(statuses(api, 'POST').sort()).toEqual([201, 409]);
    const stored = api.secretData(NAMESPACE, SECRET_NAME)!;
    const shown = await Promise.all(processes.map((serving) => handshake(serving.port, stored['ca.crt']!)));
    expect(shown[0]).toMatchObject({ trusted: true, fingerprint: fingerprintOf(stored['tls.crt']!) });
    expect(shown[1]).toEqual(shown[0]);
    await until(() => caBundleOf(api, 'sidecar-injector-canary') === stored['ca.crt'], 'the caBundle to be set');
  }, 30_000);
});

describe('a replica that finds the Secret', () => {
  it('uses it as it is and writes nothing', async () => {
    const api = await fakeApi();
    const first = await replica(api);
    const writesBefore = api.requests.filter((request) => request.method !== 'GET').length;
    const second = await replica(api);
    expect(api.requests.filter((request) => request.method !== 'GET').length).toBe(writesBefore);
    expect(second.certificates.current).toEqual(first.certificates.current);
  });
});

describe('a Secret deleted while the replicas run', () => {
  it('is written again with the certificates in use, so the CA and every caBundle stay as they were', async () => {
    const api = await fakeApi();
    const server = await replica(api, { secretPollMs: 50 });
    const before = api.secretData(NAMESPACE, SECRET_NAME)!;
    api.deleteSecret(NAMESPACE, SECRET_NAME);
    await until(() => api.secret(NAMESPACE, SECRET_NAME) !== undefined, 'the Secret to be written again');
    expect(api.secretData(NAMESPACE, SECRET_NAME)).toEqual(before);
    expect(server.certificates.current.caBundle).toBe(before['ca.crt']);
  });
});

describe('two replicas due to rotate at the same moment', () => {
  it('agree on one result: one update wins, the other gets 409 Conflict, reads again and adopts it', async () => {
    const api = await fakeApi();
    // A serving certificate issued 50 s ago for 60 s: past two thirds of its life, so due for renewal.
    const lifetimes = { ...LONG_LIFETIMES, servingValidityMs: 60_000 };
    const aged = await planCertificates(undefined, NAMES, lifetimes, new Date(Date.now() - 50_000));
    api.putSecret({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: SECRET_NAME, namespace: NAMESPACE },
      type: 'kubernetes.io/tls',
      data: Object.fromEntries(
        Object.entries(secretDataOf(aged!.certificates)).map(([key, value]) => [key, Buffer.from(value).toString('base64')]),
      ),
    });
    api.barrier(2, 'PUT', SECRETS);
    const store = () => kubernetesSecretStore(api.kubeConfig(), NAMESPACE, SECRET_NAME);
    const [a, b] = [
      new SelfManagedCertificates({ store: await store(), names: NAMES, lifetimes, pollIntervalMs: 60_000, logger: quietLogger }),
      new SelfManagedCertificates({ store: await store(), names: NAMES, lifetimes, pollIntervalMs: 60_000, logger: quietLogger }),
    ];
    const [fromA, fromB] = await Promise.all([a.start(), b.start()]);
    cleanups.push(() => a.stop(), () => b.stop());

    expect(statuses(api, 'PUT').sort()).toEqual([200, 409]);
    expect(fromA).toEqual(fromB);
    const stored = api.secretData(NAMESPACE, SECRET_NAME)!;
    expect(fromA.cert).toBe(stored['tls.crt']);
    expect(fromA.cert).not.toBe(aged!.certificates.cert);
    // Only the serving certificate was due: the CA, and so every caBundle, stayed as it was.
    expect(fromA.caBundle).toBe(aged!.certificates.caBundle);
  });
});

describe('a Secret that keeps changing under every write', () => {
  it('makes the round fail with an error naming the Secret, after a bounded number of attempts', async () => {
    let updates = 0;
    const alwaysStale: CertificateSecretStore = {
      location: `${NAMESPACE}/${SECRET_NAME}`,
      read: async () => ({ data: {}, secret: {} }),
      create: async () => 'conflict',
      update: async () => {
        updates++;
        return 'conflict';
      },
    };
    const certificates = new SelfManagedCertificates({
      store: alwaysStale,
      names: NAMES,
      lifetimes: LONG_LIFETIMES,
      pollIntervalMs: 60_000,
      logger: quietLogger,
    });
    const failure = certificates.start();
    await expect(failure).rejects.toThrow(TlsError);
    await expect(failure).rejects.toThrow(
      `the certificate Secret ${NAMESPACE}/${SECRET_NAME} changed under each of 5 attempts to write it`,
    );
    expect(updates).toBe(5);
  });
});

describe('a Secret this server did not write (cert-manager’s, after a change of mode)', () => {
  it('is taken over: its CA stays trusted and its certificate served until a CA of ours is trusted everywhere', async () => {
    const foreign = await planCertificates(undefined, NAMES, LONG_LIFETIMES);
    // No ca.key: the CA's key stayed with cert-manager.
    const { caBundle, cert, key } = foreign!.certificates;
    const data = { 'ca.crt': caBundle, 'tls.crt': cert, 'tls.key': key };
    const lifetimes = { ...LONG_LIFETIMES, trustPropagationMs: 2_000 };

    const takeover = await planCertificates(data, NAMES, lifetimes);
    expect(takeover!.changes).toEqual(['created a CA']);
    expect(takeover!.certificates.cert).toBe(cert);
    expect(certificatesIn(takeover!.certificates.caBundle)).toBe(2);
    expect(takeover!.certificates.caBundle.endsWith(caBundle)).toBe(true);

    const afterPropagation = new Date(Date.now() + 3_000);
    const later = await planCertificates(secretDataOf(takeover!.certificates), NAMES, lifetimes, afterPropagation);
    expect(later!.changes).toEqual(['moved the serving certificate to the new CA']);
    const ourCa = new X509Certificate(takeover!.certificates.caBundle);
    expect(new X509Certificate(later!.certificates.cert).verify(ourCa.publicKey)).toBe(true);
  });
});

describe('serve’s flags for self-managed certificates', () => {
  it('refuse lifetimes too short for a rotation to fit, a malformed duration, and lifetimes without --cert-secret', async () => {
    expect(errorLine(await runCli('serve', '--cert-secret', SECRET_NAME, '--cert-validity', '2m'))).toBe(
      'sidecar-injector serve: --cert-validity must be at least 180s with --cert-poll-interval 10s, so renewal and rotation fit before expiry',
    );
    expect(errorLine(await runCli('serve', '--cert-secret', SECRET_NAME, '--ca-validity', '1y'))).toBe(
      'sidecar-injector serve: --ca-validity must be a duration such as 8760h, 30m, 10s or 500ms, got "1y"',
    );
    expect(errorLine(await runCli('serve', '--cert-validity', '720h'))).toBe(
      'sidecar-injector serve: --cert-validity applies to self-managed certificates only: add --cert-secret NAME',
    );
  });

  it('refuse --cert-secret without cluster access', async () => {
    vi.stubEnv('KUBECONFIG', undefined);
    vi.stubEnv('KUBERNETES_SERVICE_HOST', undefined);
    try {
      expect(errorLine(await runCli('serve', '--cert-secret', SECRET_NAME))).toBe(
        'sidecar-injector serve: --cert-secret needs cluster access: run in a pod, or set KUBECONFIG',
      );
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
