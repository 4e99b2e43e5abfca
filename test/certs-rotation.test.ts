// Rotation under load: two replicas share self-managed certificates with lifetimes of seconds (a 9 s serving
// certificate, a 14 s CA) while several clients send reviews without pause, each on a new TLS connection as the
// API server opens them, trusting whatever caBundle the webhook configuration holds at that moment. In fourteen
// seconds the serving certificate is renewed, the CA is renewed, the serving certificate moves to the new CA and
// the old CA leaves the bundle.
//
// The lifetimes leave room for what certificates cannot express: their times are whole seconds, which can cost a
// second of a lifetime and add a second to a wait. A due serving certificate of the old CA keeps its last third
// (about 2.7 s) while the new CA waits for trust (at most 1.5 s here), so a busy machine still has a second.
//
// The API server is the small fake on loopback (test/helpers/fake-kube-api.ts); a real one comes with the e2e
// issue. Everything runs in one process, so the servers and clients share an event loop: timings are loose,
// which only makes the test harder to pass.

import { Agent, request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateLifetimes } from '../src/kube/certificate-secret.js';
import { admissionReview } from './helpers/admission.js';
import { FakeKubeApi } from './helpers/fake-kube-api.js';
import { JSON_CONTENT_TYPE } from './helpers/https.js';
import { podWith } from './helpers/pods.js';
import {
  caBundleOf,
  handshake,
  NAMESPACE,
  type Replica,
  SECRET_NAME,
  SERVICE,
  startReplica,
  until,
  webhookConfiguration,
} from './helpers/self-managed.js';

const CONFIGURATION = 'sidecar-injector-canary';
const LIFETIMES: CertificateLifetimes = { servingValidityMs: 9_000, caValidityMs: 14_000, trustPropagationMs: 500 };
const POLL_MS = 100;
/** Long enough for the first CA to be renewed, replaced in the serving certificate and dropped. */
const RUN_MS = 14_000;
/** Between two requests of one client: the servers share this event loop and must get their turn. */
const CLIENT_PAUSE_MS = 5;
const SERVERNAME = `${SERVICE.name}.${NAMESPACE}.svc`;
const BODY = JSON.stringify(admissionReview(podWith({ 'sidecar.istio.io/inject': 'true' })));

interface Seen {
  /** performance.now() when the answer (or the failure) came. */
  at: number;
  status?: number;
  error?: string;
  fingerprint?: string;
  issuer?: string;
}

/** One review on a new connection (or `agent`'s), verified against `ca`, reporting the certificate it was shown. */
function review(port: number, ca: string, agent?: Agent): Promise<Seen> {
  return new Promise((resolve) => {
    const options = { host: '127.0.0.1', port, path: '/inject', method: 'POST', ca, servername: SERVERNAME };
    const req = request({ ...options, headers: JSON_CONTENT_TYPE, agent: agent ?? false }, (res) => {
      const peer = (res.socket as TLSSocket).getPeerCertificate();
      const shown = { fingerprint: peer.fingerprint256, issuer: String(peer.issuer.CN) };
      res.resume();
      res.on('end', () => resolve({ at: performance.now(), status: res.statusCode, ...shown }));
    });
    req.on('error', (error) => resolve({ at: performance.now(), error: error.message }));
    req.end(BODY);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const issuerOf = (pem: string) => new X509Certificate(pem).subject.replace(/^CN=/, '');
const casIn = (bundle: string) => (bundle.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map(issuerOf);

let api: FakeKubeApi;
let replicas: Replica[];
let initialCa: string;
let initialBundle: string;
/** Reviews from clients that trust the configuration's caBundle at the time, as the API server does. */
const asTheApiServer: Seen[] = [];
/** Handshakes from a client that only ever trusts the first CA. */
const trustingOnlyTheFirstCa: (Seen & { trusted: boolean })[] = [];
/** Reviews on one kept-alive connection opened before any rotation. */
const onAnOldConnection: Seen[] = [];
/** Every caBundle the configuration held, with when it was first seen. */
const bundles: { at: number; cas: string[] }[] = [];

beforeAll(async () => {
  api = await FakeKubeApi.start();
  api.putWebhookConfiguration(webhookConfiguration(CONFIGURATION, [{ name: 'rev.namespace.sidecar-injector.istio.io' }]));
  const options = { lifetimes: LIFETIMES, secretPollMs: POLL_MS, webhookPollMs: POLL_MS, configurations: [CONFIGURATION] };
  const started = performance.now();
  replicas = await Promise.all([startReplica(api, options), startReplica(api, options)]);
  await until(() => caBundleOf(api, CONFIGURATION) !== undefined, 'the first caBundle');
  initialBundle = caBundleOf(api, CONFIGURATION)!;
  initialCa = casIn(initialBundle)[0]!;

  let running = true;
  const watchBundle = async () => {
    while (running) {
      const cas = casIn(caBundleOf(api, CONFIGURATION) ?? '');
      if (bundles.at(-1)?.cas.join() !== cas.join()) bundles.push({ at: performance.now(), cas });
      await sleep(10);
    }
  };
  const actAsTheApiServer = async (first: number) => {
    for (let i = first; running; i++) {
      asTheApiServer.push(await review(replicas[i % 2]!.port, caBundleOf(api, CONFIGURATION)!));
      await sleep(CLIENT_PAUSE_MS);
    }
  };
  const trustOnlyTheFirstCa = async () => {
    for (let i = 0; running; i++) {
      const shown = await handshake(replicas[i % 2]!.port, initialBundle, SERVERNAME);
      trustingOnlyTheFirstCa.push({ at: performance.now(), ...shown });
      await sleep(CLIENT_PAUSE_MS);
    }
  };
  const keepAConnection = async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    while (running) {
      onAnOldConnection.push(await review(replicas[0]!.port, initialBundle, agent));
      await sleep(50);
    }
    agent.destroy();
  };
  const clients = [
    watchBundle(),
    actAsTheApiServer(0),
    actAsTheApiServer(1),
    actAsTheApiServer(0),
    trustOnlyTheFirstCa(),
    keepAConnection(),
  ];
  await sleep(RUN_MS - (performance.now() - started));
  running = false;
  await Promise.all(clients);
  // Settle, so the checks below compare a still picture: no more polls; each replica adopts the Secret as it is
  // now and brings the webhooks in line with it.
  for (const replica of replicas) {
    replica.certificates.stop();
    replica.caBundle.stop();
  }
  for (const replica of replicas) {
    await replica.certificates.sync();
    await replica.caBundle.reconcile();
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(replicas.map((replica) => replica.close()));
  await api.close();
});

describe('a rotation of the serving certificate and of the CA under continuous reviews', () => {
  it('fails no review from clients that trust the webhook configuration’s caBundle at the time', () => {
    expect(asTheApiServer.length).toBeGreaterThan(200);
    expect(asTheApiServer.filter((seen) => seen.status !== 200)).toEqual([]);
  });

  it('renews the serving certificate and the CA, each new certificate served after its swap', async () => {
    const served = new Set(asTheApiServer.map((seen) => seen.fingerprint));
    expect(served.size).toBeGreaterThanOrEqual(3);
    const issuers = [...new Set(asTheApiServer.map((seen) => seen.issuer))];
    expect(issuers.length).toBe(2);
    expect(issuers[0]).toBe(initialCa);
    const stored = api.secretData(NAMESPACE, SECRET_NAME)!;
    for (const replica of replicas) {
      const shown = await handshake(replica.port, stored['ca.crt']!, SERVERNAME);
      expect(shown).toMatchObject({ trusted: true, fingerprint: new X509Certificate(stored['tls.crt']!).fingerprint256 });
    }
  });

  it('puts the new CA in the caBundle beside the old one before any server presents a certificate it signed', () => {
    const newCa = asTheApiServer.map((seen) => seen.issuer).find((issuer) => issuer !== initialCa)!;
    const overlap = bundles.find((bundle) => bundle.cas.includes(newCa))!;
    expect(overlap.cas).toEqual([newCa, initialCa]);
    const firstServed = Math.min(...asTheApiServer.filter((seen) => seen.issuer === newCa).map((seen) => seen.at));
    // The trust propagation time, less the watcher's sampling interval.
    expect(firstServed - overlap.at).toBeGreaterThanOrEqual(LIFETIMES.trustPropagationMs - 50);
  });

  it('keeps clients that trust only the old CA working during the overlap, and only until the switch', () => {
    const newCa = asTheApiServer.map((seen) => seen.issuer).find((issuer) => issuer !== initialCa)!;
    const overlapStart = bundles.find((bundle) => bundle.cas.includes(newCa))!.at;
    const byOldCa = trustingOnlyTheFirstCa.filter((seen) => seen.issuer === initialCa);
    expect(byOldCa.every((seen) => seen.trusted)).toBe(true);
    expect(byOldCa.filter((seen) => seen.at > overlapStart).length).toBeGreaterThan(0);
    // After the switch the old CA is no longer enough: this is what the overlap is for.
    expect(trustingOnlyTheFirstCa.filter((seen) => seen.issuer === newCa).every((seen) => !seen.trusted)).toBe(true);
  });

  it('keeps a connection opened before any rotation working throughout, on the certificate it was opened with', () => {
    expect(onAnOldConnection.length).toBeGreaterThan(50);
    expect(onAnOldConnection.filter((seen) => seen.status !== 200)).toEqual([]);
    expect(new Set(onAnOldConnection.map((seen) => seen.fingerprint)).size).toBe(1);
  });

  it('drops the old CA from the caBundle once no replica can still serve a certificate it signed', () => {
    const newCa = asTheApiServer.map((seen) => seen.issuer).find((issuer) => issuer !== initialCa)!;
    const firstServed = Math.min(...asTheApiServer.filter((seen) => seen.issuer === newCa).map((seen) => seen.at));
    const dropped = bundles.find((bundle) => bundle.cas.length === 1 && bundle.cas[0] === newCa)!;
    // The trust propagation time again, less the clients' and the watcher's sampling.
    expect(dropped.at - firstServed).toBeGreaterThanOrEqual(LIFETIMES.trustPropagationMs - 100);
    const final = casIn(caBundleOf(api, CONFIGURATION)!);
    expect(final).not.toContain(initialCa);
    expect(final).toHaveLength(1);
    expect(casIn(api.secretData(NAMESPACE, SECRET_NAME)!['ca.crt']!)).toEqual(final);
  });
});
