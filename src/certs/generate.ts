// A CA and a serving certificate it signs, for the webhook's TLS. selfsigned signs with SHA-1 unless told
// otherwise, which Go (the kube-apiserver) and Node both refuse for CA-issued certificates: always sha256.

import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';

export interface CertificateBundle {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
}

/** A certificate and its private key, both PEM. */
export interface CertificateAndKey {
  cert: string;
  key: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** The CA outlives several serving certificates, so rotating the leaf does not change the caBundle. */
export const CA_VALIDITY_DAYS = 3650;
export const SERVING_VALIDITY_DAYS = 365;
/**
 * Every certificate is valid from this long before it was issued: a node whose clock runs a little behind the
 * issuer's (the API server's, another replica's) would otherwise refuse a certificate fresh from rotation.
 */
export const ISSUE_BACKDATE_MS = 60_000;

/**
 * notBefore for a certificate issued at `now`. Certificates keep whole seconds; rounding the issue time up means
 * the time read back (notBefore + ISSUE_BACKDATE_MS) is never earlier than the real one, so a wait measured from
 * it is never cut short.
 */
const notBefore = (now: Date) => new Date(Math.ceil(now.getTime() / 1000) * 1000 - ISSUE_BACKDATE_MS);

export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

const isIpAddress = (name: string) => /^[0-9.]+$/.test(name) || name.includes(':');

/**
 * A self-signed CA valid for `validityMs` from `now`. Its name carries the time of issue, as Kubernetes' own
 * self-signed CAs do (`name@<time>`): during a rotation two CAs sit in one bundle, and OpenSSL picks an issuer by
 * name, so two CAs with the same name could make it check a certificate against the wrong key.
 */
export async function generateCertificateAuthority(validityMs: number, now = new Date()): Promise<CertificateAndKey> {
  const ca = await generate([{ name: 'commonName', value: `sidecar-injector-ca@${now.getTime()}` }], {
    algorithm: 'sha256',
    keySize: 2048,
    notBeforeDate: notBefore(now),
    notAfterDate: new Date(now.getTime() + validityMs),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  return { cert: ca.cert, key: ca.private };
}

/**
 * A serving certificate for `names` signed by `ca`, valid for `validityMs` from `now` but never past the CA's own
 * expiry: no client would accept it beyond that, and renewal timed on its own lifetime would come too late.
 */
export async function issueServingCertificate(
  ca: CertificateAndKey,
  names: string[],
  validityMs: number,
  now = new Date(),
): Promise<CertificateAndKey> {
  if (names.length === 0) throw new Error('at least one DNS name or IP address is needed');
  const caExpiry = new X509Certificate(ca.cert).validToDate.getTime();
  const altNames = names.map((value) => (isIpAddress(value) ? { type: 7 as const, ip: value } : { type: 2 as const, value }));
  const leaf = await generate([{ name: 'commonName', value: names[0] ?? 'localhost' }], {
    algorithm: 'sha256',
    keySize: 2048,
    ca: { key: ca.key, cert: ca.cert },
    notBeforeDate: notBefore(now),
    notAfterDate: new Date(Math.min(now.getTime() + validityMs, caExpiry)),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { cert: leaf.cert, key: leaf.private };
}

export async function generateCertificates(names: string[], now = new Date()): Promise<CertificateBundle> {
  const ca = await generateCertificateAuthority(CA_VALIDITY_DAYS * DAY_MS, now);
  const leaf = await issueServingCertificate(ca, names, SERVING_VALIDITY_DAYS * DAY_MS, now);
  return { caCert: ca.cert, caKey: ca.key, cert: leaf.cert, key: leaf.key };
}
