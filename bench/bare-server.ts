// The ceiling the injector is measured against: Fastify over HTTPS with the same certificate and Node, parsing the
// same AdmissionReview and answering a fixed AdmissionReview as long as ours, with no logging and no injection.
//
//   node --import tsx bench/bare-server.ts PORT CERT_DIR '{"a":1234,...}'
//
// The last argument maps a workload (the path segment after /inject/) to the length of our answer to it.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import { SERVING_CERT_FILE, SERVING_KEY_FILE } from '../src/certs/files.js';
import { MAX_BODY_BYTES } from '../src/admission/outcomes.js';

const [portArgument, certDir, lengthsArgument] = process.argv.slice(2);
if (portArgument === undefined || certDir === undefined || lengthsArgument === undefined) {
  throw new Error('usage: bare-server.ts PORT CERT_DIR ANSWER_LENGTHS_JSON');
}
const answerLengths = JSON.parse(lengthsArgument) as Record<string, number>;

/** A v1 AdmissionReview answer padded with base64 in `patch` to exactly `length` bytes. */
function fixedAnswer(length: number): string {
  const frame = (patch: string) =>
    JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true, patchType: 'JSONPatch', patch } });
  const padding = Math.max(0, length - frame('').length);
  return frame('A'.repeat(padding));
}
const answers = new Map(Object.entries(answerLengths).map(([workload, length]) => [workload, fixedAnswer(length)]));

const app = Fastify({
  https: { key: readFileSync(join(certDir, SERVING_KEY_FILE)), cert: readFileSync(join(certDir, SERVING_CERT_FILE)), minVersion: 'TLSv1.2' },
  bodyLimit: MAX_BODY_BYTES,
  logger: false,
});
app.post('/inject/:workload', (request, reply) => {
  // Fastify has parsed the body, as it does for us; touching it keeps that work from looking unused.
  if (typeof request.body !== 'object' || request.body === null) return reply.code(400).send();
  const answer = answers.get((request.params as { workload: string }).workload);
  if (answer === undefined) return reply.code(404).send();
  return reply.type('application/json; charset=utf-8').send(answer);
});
await app.listen({ port: Number(portArgument), host: '127.0.0.1' });
process.stdout.write('listening\n');
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
