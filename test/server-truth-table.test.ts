// The truth table of istio-injector.md §2.1 over HTTPS: a default-revision server and a canary server run side by
// side, each knowing the namespace labels from its config file's `namespaces:` (what `serve` uses without a
// cluster). For every row, exactly the expected server injects, and the pod records that server's revision.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdmissionReviewAnswer } from '../src/admission/encode.js';
import { resolveConfig } from '../src/config/schema.js';
import { admissionReview, applyAnswer } from './helpers/admission.js';
import { json, postJson, startServer, type TestServer } from './helpers/https.js';
import { podWith, statusOf } from './helpers/pods.js';
import { TRUTH_TABLE } from './helpers/truth-table.js';

// One namespace per row, labelled as the row says.
const namespaces = Object.fromEntries(TRUTH_TABLE.map(([labels], i) => [`ns-${i}`, labels]));
const servers: Record<'istiod' | 'istiod-canary', TestServer> = {} as never;

beforeAll(async () => {
  servers.istiod = await startServer({ config: resolveConfig({ namespaces }) });
  servers['istiod-canary'] = await startServer({ config: resolveConfig({ revision: 'canary', namespaces }) });
});
afterAll(async () => {
  await Promise.all(Object.values(servers).map((server) => server.close()));
});

const show = (labels: Record<string, string>) =>
  Object.keys(labels).length ? Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') : '-';

describe('the default and canary servers over HTTPS', () => {
  it.each(TRUTH_TABLE.map((row, i) => [show(row[0]), show(row[1]), row[2] || 'nobody', i] as const))(
    'namespace %s with pod labels %s is injected by %s',
    async (_namespace, _pod, _expected, i) => {
      const [, podLabels, expected] = TRUTH_TABLE[i]!;
      const namespace = `ns-${i}`;
      const pod = podWith(podLabels);
      (pod.metadata as { namespace: string }).namespace = namespace;
      const injectedBy: string[] = [];
      for (const [name, server] of Object.entries(servers)) {
        const answer = await postJson(server, admissionReview(pod, { namespace, uid: `${name}-${i}` }));
        expect(answer.status).toBe(200);
        const review = json<AdmissionReviewAnswer>(answer);
        expect(review.response.allowed).toBe(true);
        if (review.response.patch === undefined) continue;
        injectedBy.push(name);
        expect(statusOf(applyAnswer(pod, review)).revision).toBe(name === 'istiod' ? 'default' : 'canary');
      }
      expect(injectedBy).toEqual(expected ? [expected] : []);
    },
  );
});
