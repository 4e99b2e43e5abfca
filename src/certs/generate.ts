// A CA and a serving certificate it signs, for the webhook's TLS. selfsigned signs with SHA-1 unless told
// otherwise, which Go (the kube-apiserver) and Node both refuse for CA-issued certificates: always sha256.

import { generate } from 'selfsigned';

export interface CertificateBundle {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** The CA outlives several serving certificates, so rotating the leaf does not change the caBundle. */
export const CA_VALIDITY_DAYS = 3650;
export const SERVING_VALIDITY_DAYS = 365;

export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

const isIpAddress = (name: string) => /^[0-9.]+$/.test(name) || name.includes(':');

export async function generateCertificates(names: string[], now = new Date()): Promise<CertificateBundle> {
  if (names.length === 0) throw new Error('at least one DNS name or IP address is needed');
  const ca = await generate([{ name: 'commonName', value: 'sidecar-injector-ca' }], {
    algorithm: 'sha256',
    keySize: 2048,
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: new Date(now.getTime() + CA_VALIDITY_DAYS * DAY_MS),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const altNames = names.map((value) => (isIpAddress(value) ? { type: 7 as const, ip: value } : { type: 2 as const, value }));
  const leaf = await generate([{ name: 'commonName', value: names[0] ?? 'localhost' }], {
    algorithm: 'sha256',
    keySize: 2048,
    ca: { key: ca.private, cert: ca.cert },
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: new Date(now.getTime() + SERVING_VALIDITY_DAYS * DAY_MS),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { caCert: ca.cert, caKey: ca.private, cert: leaf.cert, key: leaf.private };
}
