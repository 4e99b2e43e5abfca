// Self-managed certificates: a CA and the serving certificate it signs, kept in one Secret that every replica of
// a revision shares, so they all serve certificates the webhooks' one caBundle trusts.
//
// - Start-up: read the Secret; when it is missing, create it. Replicas starting together all try, the API server
//   lets exactly one create win (409 AlreadyExists for the others), and the losers read and use the winner's.
// - Rotation: every replica reads the Secret every poll interval and writes it when something is due; the write
//   carries the resourceVersion it read, so of two replicas rotating at once one gets 409 Conflict, reads again
//   and adopts the other's result.
// - A new CA joins the bundle before it signs anything: the served certificate stays the old CA's until the new
//   CA has been in the bundle for trustPropagationMs (time for every caBundle to be patched), and the old CA
//   leaves the bundle only once no replica can still be serving a certificate it signed.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { KubeConfig, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { CA_CERT_FILE, SERVING_CERT_FILE, SERVING_KEY_FILE } from '../certs/files.js';
import {
  type CertificateAndKey,
  generateCertificateAuthority,
  ISSUE_BACKDATE_MS,
  issueServingCertificate,
} from '../certs/generate.js';
import { TlsError } from '../errors.js';
import { apiStatus, boundedRequests, describeApiError } from './api-requests.js';
import { PollingRound } from './polling-round.js';

/** The Secret's keys: a kubernetes.io/tls Secret's three, plus the CA's key, which only this server reads. */
const CA_KEY = 'ca.key';

/** What the Secret holds, as PEM. */
export interface ManagedCertificates {
  /** The CA that signs, then any earlier CA still trusted: what every webhook's caBundle must hold. */
  caBundle: string;
  caKey: string;
  cert: string;
  key: string;
}

export interface StoredSecret {
  /** The Secret's data, decoded from base64. */
  data: Record<string, string>;
  /** The Secret as read: an update sends it back, so its type, labels and resourceVersion go with it. */
  secret: V1Secret;
}

/** Where the Secret lives: the API server in a cluster; tests may put something else behind the same calls. */
export interface CertificateSecretStore {
  /** namespace/name, for log lines and errors. */
  readonly location: string;
  /** undefined when the Secret does not exist. */
  read(): Promise<StoredSecret | undefined>;
  /** 'conflict' when the Secret exists already: another replica created it first. */
  create(data: Record<string, string>): Promise<StoredSecret | 'conflict'>;
  /** 'conflict' when the Secret changed since `previous` was read. */
  update(previous: StoredSecret, data: Record<string, string>): Promise<StoredSecret | 'conflict'>;
}

const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'sidecar-injector' };

/** The Secret through the API server; the Secret is created as kubernetes.io/tls. */
export async function kubernetesSecretStore(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
): Promise<CertificateSecretStore> {
  const k8s = await import('@kubernetes/client-node');
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const bounded = boundedRequests(k8s);
  const location = `${namespace}/${name}`;
  const recode = (data: Record<string, string>, from: BufferEncoding, to: BufferEncoding) =>
    Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, from).toString(to)]));
  const encode = (data: Record<string, string>) => recode(data, 'utf8', 'base64');
  const decode = (secret: V1Secret): StoredSecret => ({ secret, data: recode(secret.data ?? {}, 'base64', 'utf8') });
  const failed = (action: string, error: unknown) =>
    new TlsError(`cannot ${action} the certificate Secret ${location}: ${describeApiError(k8s, error)}`);

  return {
    location,
    async read() {
      try {
        return decode(await core.readNamespacedSecret({ name, namespace }, bounded));
      } catch (error) {
        if (apiStatus(k8s, error) === 404) return undefined;
        throw failed('read', error);
      }
    },
    async create(data) {
      const body: V1Secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace, labels: MANAGED_BY },
        type: 'kubernetes.io/tls',
        data: encode(data),
      };
      try {
        return decode(await core.createNamespacedSecret({ namespace, body }, bounded));
      } catch (error) {
        if (apiStatus(k8s, error) === 409) return 'conflict';
        throw failed('create', error);
      }
    },
    async update(previous, data) {
      try {
        const body = { ...previous.secret, data: encode(data) };
        return decode(await core.replaceNamespacedSecret({ name, namespace, body }, bounded));
      } catch (error) {
        if (apiStatus(k8s, error) === 409) return 'conflict';
        throw failed('update', error);
      }
    },
  };
}

// ---- what is due --------------------------------------------------------------------------------------------

export interface CertificateLifetimes {
  servingValidityMs: number;
  caValidityMs: number;
  /** How long a new CA is in the bundle before it signs the served certificate (defaultTrustPropagationMs). */
  trustPropagationMs: number;
}

/** Renewal at two thirds of the lifetime, as cert-manager does by default: a third is left for retries. */
const RENEW_AT_FRACTION = 2 / 3;

/**
 * Covers the caBundle patch (made by the replica that rotated, at once, and retried every poll by all of them)
 * and the API servers' informers, which see a changed webhook configuration within seconds.
 */
const TRUST_PROPAGATION_MS = 5 * 60_000;
/** Every replica reads the Secret once per poll: a few polls let every one of them adopt a change. */
const TRUST_PROPAGATION_POLLS = 3;

/**
 * TRUST_PROPAGATION_MS, or less for short lifetimes (tests, demos), but never fewer than a few polls. A serving
 * certificate due for renewal has a third of its life left, and one signed just before a CA renewal lives at
 * least a third of the CA's lifetime: waiting at most half of that keeps the wait well inside what is left.
 */
export function defaultTrustPropagationMs(servingValidityMs: number, caValidityMs: number, pollIntervalMs: number): number {
  const fitted = Math.min(TRUST_PROPAGATION_MS, servingValidityMs / 6, caValidityMs / 18);
  return Math.max(TRUST_PROPAGATION_POLLS * pollIntervalMs, fitted);
}

/** The shortest lifetimes for which the trust propagation wait still fits (see defaultTrustPropagationMs). */
export function minimumLifetimesMs(pollIntervalMs: number): { servingValidityMs: number; caValidityMs: number } {
  const wait = TRUST_PROPAGATION_POLLS * pollIntervalMs;
  return { servingValidityMs: 6 * wait, caValidityMs: 18 * wait };
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

function parseCertificates(pem: string | undefined): X509Certificate[] {
  const parsed: X509Certificate[] = [];
  for (const [block] of (pem ?? '').matchAll(PEM_CERTIFICATE)) {
    try {
      parsed.push(new X509Certificate(block));
    } catch {
      // Whatever does not parse is not trusted; the rest of the bundle still counts.
    }
  }
  return parsed;
}

const toPem = (certificate: X509Certificate) => certificate.toString();
const sameCertificate = (a: X509Certificate, b: X509Certificate) => a.fingerprint256 === b.fingerprint256;
const expiry = (certificate: X509Certificate) => certificate.validToDate.getTime();
/** Our certificates are valid from ISSUE_BACKDATE_MS before they were issued. */
const issuedAt = (certificate: X509Certificate) =>
  Math.min(certificate.validFromDate.getTime() + ISSUE_BACKDATE_MS, expiry(certificate));
const renewsAt = (certificate: X509Certificate) =>
  issuedAt(certificate) + RENEW_AT_FRACTION * (expiry(certificate) - issuedAt(certificate));

function matchesKey(certificate: X509Certificate, keyPem: string | undefined): boolean {
  if (keyPem === undefined) return false;
  try {
    return certificate.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

const covers = (certificate: X509Certificate, names: string[]) =>
  names.every((name) => (isIP(name) ? certificate.checkIP(name) : certificate.checkHost(name)) !== undefined);

export interface CertificatePlan {
  certificates: ManagedCertificates;
  /** What changed, one phrase each, for the log. */
  changes: string[];
}

/**
 * What the Secret should hold at `now`, given what it holds (`data`, undefined when there is no Secret);
 * undefined when nothing is due. A Secret this server did not write (cert-manager's, say, after a change of
 * mode) is taken over: its CAs stay trusted until they expire, and its certificate is served until a CA of ours
 * is trusted everywhere.
 */
export async function planCertificates(
  data: Record<string, string> | undefined,
  names: string[],
  lifetimes: CertificateLifetimes,
  now = new Date(),
): Promise<CertificatePlan | undefined> {
  const time = now.getTime();
  const changes: string[] = [];
  const bundle = parseCertificates(data?.[CA_CERT_FILE]);
  const first = bundle[0];
  let signer: (CertificateAndKey & { x509: X509Certificate }) | undefined =
    first && first.ca && time < expiry(first) && matchesKey(first, data?.[CA_KEY])
      ? { cert: toPem(first), key: data?.[CA_KEY] as string, x509: first }
      : undefined;
  let previous = signer ? bundle.slice(1) : bundle;
  if (!signer || time >= renewsAt(signer.x509)) {
    if (signer) previous = [signer.x509, ...previous];
    changes.push(signer ? 'renewed the CA (the previous one stays trusted until it expires)' : 'created a CA');
    const fresh = await generateCertificateAuthority(lifetimes.caValidityMs, now);
    signer = { ...fresh, x509: new X509Certificate(fresh.cert) };
  }
  const unexpired = previous.filter((ca) => time < expiry(ca));

  const serving = parseCertificates(data?.[SERVING_CERT_FILE])[0];
  const usable =
    serving && time < expiry(serving) && matchesKey(serving, data?.[SERVING_KEY_FILE]) && covers(serving, names);
  const signedBy = (ca: X509Certificate) =>
    serving !== undefined && serving.checkIssued(ca) && serving.verify(ca.publicKey);
  const issuer = usable ? [signer.x509, ...unexpired].find(signedBy) : undefined;
  const signerTrustedEverywhere = time >= issuedAt(signer.x509) + lifetimes.trustPropagationMs;
  let servingChange: string | undefined;
  if (!serving || !issuer) servingChange = 'issued a serving certificate';
  else if (!sameCertificate(issuer, signer.x509)) {
    // Even when due: the old certificate has a third of its life left, and one the webhooks' caBundle does not
    // trust yet would fail every review.
    if (signerTrustedEverywhere) servingChange = 'moved the serving certificate to the new CA';
  } else if (time >= renewsAt(serving)) servingChange = 'renewed the serving certificate';
  let leaf = { cert: data?.[SERVING_CERT_FILE] ?? '', key: data?.[SERVING_KEY_FILE] ?? '' };
  if (servingChange) {
    changes.push(servingChange);
    leaf = await issueServingCertificate(signer, names, lifetimes.servingValidityMs, now);
  }

  // An earlier CA stays trusted while the certificate in the Secret is its, or is so new that a replica may still
  // serve the one before it; after that none of its certificates is in use, and trusting it longer would only
  // help whoever else holds its key (cert-manager's CA, after a change of mode).
  const recentlyIssued =
    servingChange !== undefined || (serving !== undefined && time < issuedAt(serving) + lifetimes.trustPropagationMs);
  const stillTrusted = unexpired.filter((ca) => recentlyIssued || signedBy(ca));
  if (stillTrusted.length < previous.length) changes.push('dropped a CA no certificate in use was signed by');

  if (changes.length === 0) return undefined;
  const caBundle = [signer.x509, ...stillTrusted].map(toPem).join('');
  return { certificates: { caBundle, caKey: signer.key, ...leaf }, changes };
}

// ---- one replica's certificates -----------------------------------------------------------------------------

export interface SelfManagedCertificatesOptions {
  store: CertificateSecretStore;
  /** The names the serving certificate must be valid for. */
  names: string[];
  lifetimes: CertificateLifetimes;
  /** How often the Secret is read again: another replica's rotation, or a due renewal, happens within it. */
  pollIntervalMs: number;
  logger: Logger;
}

/**
 * A conflict means another replica wrote a current state a moment ago, and reading it again finds nothing due;
 * a few in a row mean something else keeps rewriting the Secret.
 */
const MAX_WRITE_ATTEMPTS = 5;

const fromSecretData = (data: Record<string, string>): ManagedCertificates => ({
  caBundle: data[CA_CERT_FILE] ?? '',
  caKey: data[CA_KEY] ?? '',
  cert: data[SERVING_CERT_FILE] ?? '',
  key: data[SERVING_KEY_FILE] ?? '',
});

const toSecretData = (certificates: ManagedCertificates): Record<string, string> => ({
  [CA_CERT_FILE]: certificates.caBundle,
  [CA_KEY]: certificates.caKey,
  [SERVING_CERT_FILE]: certificates.cert,
  [SERVING_KEY_FILE]: certificates.key,
});

type Listener<T> = (value: T) => void;

/** This replica's view of the Secret: read, created or rotated on start and every poll interval. */
export class SelfManagedCertificates {
  private adopted: ManagedCertificates | undefined;
  private readonly rounds: PollingRound<ManagedCertificates>;
  private readonly servingListeners: Listener<CertificateAndKey>[] = [];
  private readonly bundleListeners: Listener<string>[] = [];

  constructor(private readonly options: SelfManagedCertificatesOptions) {
    this.rounds = new PollingRound(() => this.syncOnce(), options.pollIntervalMs, (error) =>
      options.logger.warn(
        { err: { message: (error as Error).message } },
        'cannot check the certificate Secret; serving the current certificate',
      ),
    );
  }

  /** The certificates in use; start() must have resolved. */
  get current(): ManagedCertificates {
    if (!this.adopted) throw new Error('SelfManagedCertificates.current read before start()');
    return this.adopted;
  }

  /** Called with the new serving certificate whenever it changes (not for the first). */
  onServingCertificate(listener: Listener<CertificateAndKey>): void {
    this.servingListeners.push(listener);
  }

  /** Called with the new caBundle whenever it changes (not for the first). */
  onCaBundle(listener: Listener<string>): void {
    this.bundleListeners.push(listener);
  }

  /** The first round, which must succeed (there is nothing to serve without it); then one every poll interval. */
  async start(): Promise<ManagedCertificates> {
    const certificates = await this.sync();
    this.rounds.poll();
    return certificates;
  }

  stop(): void {
    this.rounds.stop();
  }

  /** Reads the Secret, writes it when something is due, adopts what it then holds. Concurrent calls share a round. */
  sync(): Promise<ManagedCertificates> {
    return this.rounds.run();
  }

  private async syncOnce(): Promise<ManagedCertificates> {
    const { store, names, lifetimes, logger } = this.options;
    for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
      const stored = await store.read();
      // A Secret deleted while the server runs is written again from the certificates in use: a new CA would not
      // be in any caBundle yet.
      const current = stored?.data ?? (this.adopted && toSecretData(this.adopted));
      const plan = await planCertificates(current, names, lifetimes);
      if (stored && !plan) return this.adopt(stored.data);
      const data = plan ? toSecretData(plan.certificates) : (current as Record<string, string>);
      const written = stored ? await store.update(stored, data) : await store.create(data);
      if (written === 'conflict') {
        logger.info({ secret: store.location }, 'another replica wrote the certificate Secret first; reading it again');
        continue;
      }
      const changes = plan?.changes ?? ['wrote the deleted Secret again'];
      logger.info({ secret: store.location, changes }, 'updated the certificate Secret');
      return this.adopt(written.data);
    }
    throw new TlsError(
      `the certificate Secret ${store.location} changed under each of ${MAX_WRITE_ATTEMPTS} attempts to write it`,
    );
  }

  private adopt(data: Record<string, string>): ManagedCertificates {
    const next = fromSecretData(data);
    const previous = this.adopted;
    const servingChanged = previous?.cert !== next.cert || previous.key !== next.key;
    const bundleChanged = previous?.caBundle !== next.caBundle;
    if (previous && !servingChanged && !bundleChanged) return previous;
    try {
      // Refused here, with the Secret's name, rather than by setSecureContext in the middle of serving.
      createSecureContext({ cert: next.cert, key: next.key });
    } catch (error) {
      const { location } = this.options.store;
      throw new TlsError(`the certificate Secret ${location} holds no usable certificate and key: ${(error as Error).message}`);
    }
    this.adopted = next;
    const serving = new X509Certificate(next.cert);
    this.options.logger.info(
      {
        secret: this.options.store.location,
        issuer: serving.issuer,
        validTo: serving.validToDate,
        trustedCAs: parseCertificates(next.caBundle).length,
      },
      'using the certificates in the Secret',
    );
    if (!previous) return next;
    if (servingChanged) for (const listener of this.servingListeners) listener({ cert: next.cert, key: next.key });
    if (bundleChanged) for (const listener of this.bundleListeners) listener(next.caBundle);
    return next;
  }
}
