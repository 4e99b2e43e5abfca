// Generators for the fuzz properties: pods and AdmissionReviews that are mostly well formed, so the core gets deep,
// with hostile values at every level (wrong types, null, huge or unicode strings, keys like __proto__ or with "/"
// and "~", deep nesting, duplicate container names), and the invariants' checks.
//
// `npm test` runs each property a bounded number of times; `npm run fuzz` sets FUZZ_RUNS to run them far longer.

import fc from 'fast-check';
import { Pod } from 'kubernetes-models/v1/Pod';
import { ANNOTATION, INIT_CONTAINER, LABEL, PROXY_CONTAINER, VALIDATION_CONTAINER } from '../../src/core/constants.js';
import type { Json, JsonObject } from '../../src/core/json.js';

const fuzzRuns = Number(process.env.FUZZ_RUNS ?? 0);

/** `bounded` runs in `npm test`; FUZZ_RUNS (scaled by `share` for slower properties) under `npm run fuzz`. */
export function runs(bounded: number, share = 1): number {
  return fuzzRuns > 0 ? Math.max(bounded, Math.round(fuzzRuns * share)) : bounded;
}

/** A value no log line may contain: it sits where only the pod's owner should ever see it. */
export const SECRET = 'Sentinel-Secret-Do-Not-Log';

const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'a/b', '~', '~1', '~0/', '/', '', ' '];
const HOSTILE_STRINGS = ['', ' ', '\u0000', '\uD800', '\u202Eevil', 'é\u0301', '🦄', 'true', 'false', 'null', '{', '[]', '{"a":1}', '0', '-1', '65536', '1e400', '*', '~1/~0', '__proto__'];

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 200_000 }).map((n) => 'x'.repeat(n)) },
);

const hostileKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...HOSTILE_KEYS),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom(...Object.values(ANNOTATION), ...Object.values(LABEL)),
);

const scalar: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -0, -1, 1.5, 1e308, 2 ** 53, 65536),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  hostileString,
);

/** Arbitrary JSON: the wrong type for whatever field it lands in. */
export const anyJson: fc.Arbitrary<Json> = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(hostileKey, tie('json'), { maxKeys: 4 }),
  ),
})).json;

/** `depth` arrays or objects inside each other, as JSON text (V8's JSON.stringify gives up at a few thousand). */
const nestedText = (depth: number, arrays: boolean): string =>
  arrays ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

/** Mostly `valid`, sometimes any JSON at all, sometimes missing (undefined drops the key). */
function orHostile<T extends Json>(valid: fc.Arbitrary<T>, hostility = 1): fc.Arbitrary<Json | undefined> {
  return fc.oneof(
    { weight: 12, arbitrary: valid },
    { weight: hostility, arbitrary: anyJson },
    { weight: hostility, arbitrary: fc.constant(null) },
    { weight: hostility, arbitrary: fc.constant(undefined) },
  );
}

/** Drops keys whose value is undefined, so the object is what JSON would carry. */
function defined(record: Record<string, Json | undefined>): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(record)) if (value !== undefined) Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

const hostileRecord = (fields: Record<string, fc.Arbitrary<Json | undefined>>): fc.Arbitrary<JsonObject> =>
  fc.record(fields).map((record) => defined(record as Record<string, Json | undefined>));

// Few names, so containers collide with each other and with the injected ones.
const containerName = fc.constantFrom('app', 'web', 'app', PROXY_CONTAINER, INIT_CONTAINER, VALIDATION_CONTAINER, 'sidecar', 'x-1');
const port = fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constantFrom(15001, 15006, 15020, 15021, 15090, 80, 8080));

const envVar = hostileRecord({
  name: orHostile(fc.constantFrom('PATH', 'ISTIO_META_NETWORK', 'ISTIO_KUBE_APP_PROBERS', 'A', 'A', 'DB_PASSWORD')),
  value: orHostile(fc.constant(SECRET)),
});

const httpGet = hostileRecord({
  path: orHostile(fc.constantFrom('/healthz', '/ready', '', '/a b?c=%2F')),
  port: orHostile(fc.oneof(port, fc.constantFrom('http', 'metrics', 'missing'))),
  scheme: orHostile(fc.constantFrom('HTTP', 'HTTPS')),
  httpHeaders: orHostile(fc.array(hostileRecord({ name: orHostile(fc.constant('X-Probe')), value: orHostile(fc.constant('1')) }), { maxLength: 2 })),
});

const probe = hostileRecord({
  httpGet: orHostile(httpGet),
  tcpSocket: orHostile(hostileRecord({ port: orHostile(port) }), 3),
  grpc: orHostile(hostileRecord({ port: orHostile(port) }), 3),
  periodSeconds: orHostile(fc.integer({ min: 1, max: 60 })),
});

const container = hostileRecord({
  name: orHostile(containerName),
  image: orHostile(fc.constantFrom('nginx:1.27', 'example/app:1', 'docker.io/istio/proxyv2:1.24.0')),
  env: orHostile(fc.array(envVar, { maxLength: 6 })),
  ports: orHostile(
    fc.array(
      hostileRecord({ containerPort: orHostile(port), name: orHostile(fc.constantFrom('http', 'grpc', 'metrics')), protocol: orHostile(fc.constantFrom('TCP', 'UDP')) }),
      { maxLength: 3 },
    ),
  ),
  readinessProbe: orHostile(probe, 2),
  livenessProbe: orHostile(probe, 2),
  startupProbe: orHostile(probe, 2),
  args: orHostile(fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 })),
  securityContext: orHostile(hostileRecord({ runAsUser: orHostile(fc.integer({ min: 0, max: 70000 })) })),
  volumeMounts: orHostile(fc.array(hostileRecord({ name: orHostile(fc.constantFrom('data', 'istio-envoy')), mountPath: orHostile(fc.constantFrom('/data', '/etc/istio/proxy')) }), { maxLength: 2 })),
  restartPolicy: orHostile(fc.constant('Always'), 3),
});

const ANNOTATION_VALUES = [
  'true', 'false', '', 'enabled', 'REDIRECT', 'TPROXY', 'NONE', '15020', '0', '-1', '99999', '10.0.0.0/8', '*', '1.2.3.4/33', '80,443', 'a,b',
  '{}', '{"holdApplicationUntilProxyStarts": true}', '{"proxyMetadata": {"A": "b"}}', 'sidecar', 'gateway', 'grpc-simple', 'sidecar,sidecar', 'nonexistent',
  '{"v": {"emptyDir": {}}}', '{"v": {"mountPath": "/v"}}', '100m', '1Gi', 'debug', 'distroless', '{"containers":[{"name":"istio-proxy","env":[{"name":"X","value":"1"}]}]}',
  '{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"imagePullSecrets":null,"revision":"default"}',
];
const annotationValue = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...ANNOTATION_VALUES) }, { weight: 1, arbitrary: hostileString });
const istioKey = fc.constantFrom(...Object.values(ANNOTATION), ...Object.values(LABEL));

// Annotation and label maps with Istio's keys and hostile ones; values are strings except when hostile.
const stringMap = (key: fc.Arbitrary<string>, value: fc.Arbitrary<string>) =>
  orHostile(fc.dictionary(key, value, { maxKeys: 6 }).map((map) => defined(map)));

const metadata = hostileRecord({
  name: orHostile(fc.constantFrom('web-0', 'a', 'x'.repeat(63))),
  generateName: orHostile(fc.constantFrom('web-7c9f8d-', 'job-')),
  namespace: orHostile(fc.constantFrom('team', 'istio-system', 'kube-system', 'other')),
  labels: stringMap(fc.oneof(istioKey, hostileKey, fc.constantFrom('app', 'version')), annotationValue),
  annotations: stringMap(
    fc.oneof({ weight: 3, arbitrary: istioKey }, { weight: 1, arbitrary: hostileKey }),
    fc.oneof({ weight: 4, arbitrary: annotationValue }, { weight: 1, arbitrary: fc.constant(SECRET) }),
  ),
  ownerReferences: orHostile(
    fc.array(hostileRecord({ apiVersion: orHostile(fc.constant('apps/v1')), kind: orHostile(fc.constantFrom('ReplicaSet', 'Job', 'StatefulSet')), name: orHostile(fc.constantFrom('web-7c9f8d', 'job-1')) }), { maxLength: 2 }),
  ),
});

const volume = hostileRecord({ name: orHostile(fc.constantFrom('data', 'istio-envoy', 'istio-data', 'workload-socket')), emptyDir: orHostile(fc.constant({})) });

const spec = hostileRecord({
  containers: orHostile(fc.array(container, { minLength: 1, maxLength: 4 }), 1),
  initContainers: orHostile(fc.array(container, { maxLength: 2 }), 2),
  volumes: orHostile(fc.array(volume, { maxLength: 3 }), 2),
  imagePullSecrets: orHostile(fc.array(hostileRecord({ name: orHostile(fc.constant('regcred')) }), { maxLength: 2 }), 2),
  hostNetwork: orHostile(fc.boolean(), 2),
  serviceAccountName: orHostile(fc.constantFrom('default', 'web')),
});

/** A pod, as JSON.parse would give it (keys like __proto__ are own data properties). */
export const hostilePod: fc.Arbitrary<JsonObject> = hostileRecord({
  apiVersion: orHostile(fc.constant('v1'), 1),
  kind: orHostile(fc.constant('Pod'), 1),
  metadata: orHostile(metadata, 1),
  spec: orHostile(spec, 1),
});

/** A pod many times larger than a real one: many containers, many env vars, long values. */
export const hugePod: fc.Arbitrary<JsonObject> = fc
  .tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 100_000 }))
  .map(([containers, envCount, valueLength]) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'huge', annotations: { 'example.com/blob': 'y'.repeat(valueLength) } },
    spec: {
      containers: Array.from({ length: containers }, (_, c) => ({
        name: `c${c}`,
        image: 'nginx',
        env: Array.from({ length: Math.floor(envCount / containers) }, (_, e) => ({ name: `E${e}`, value: SECRET })),
        ports: [{ containerPort: 8000 + c }],
      })),
    },
  }));

/**
 * A pod holding a deeply nested value where the core might walk it. Objects stay within what the checks' own
 * structuredClone and JSON.stringify can copy, but a string may hold JSON nested as deep as the API server accepts (10,000).
 * Printed as its recipe: fast-check's own printer would overflow the stack on the value.
 */
export const deepPod: fc.Arbitrary<JsonObject> = fc
  .record({
    depth: fc.integer({ min: 100, max: 1_000 }),
    textDepth: fc.integer({ min: 100, max: 10_000 }),
    arrays: fc.boolean(),
    where: fc.constantFrom('container-field', 'proxy-override', 'volume', 'proxy-config-annotation', 'overrides-annotation', 'overrides-record', 'user-volume-annotation'),
  })
  .map((recipe) => {
    const { depth, textDepth, arrays, where } = recipe;
    const deep = () => JSON.parse(nestedText(depth, arrays)) as Json;
    const containers: JsonObject[] = [{ name: 'app', image: 'nginx' }];
    const annotations: JsonObject = {};
    const pod: JsonObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'deep', annotations }, spec: { containers } };
    if (where === 'container-field') (containers[0] as JsonObject).deep = deep();
    if (where === 'proxy-override') containers.push({ name: PROXY_CONTAINER, image: 'custom', deep: deep() });
    if (where === 'volume') (pod.spec as JsonObject).volumes = [{ name: 'v', deep: deep() }];
    if (where === 'proxy-config-annotation') annotations[ANNOTATION.proxyConfig] = nestedText(textDepth, arrays);
    if (where === 'overrides-annotation') annotations[ANNOTATION.overrides] = nestedText(textDepth, arrays);
    if (where === 'user-volume-annotation') annotations[ANNOTATION.userVolume] = nestedText(textDepth, arrays);
    if (where === 'overrides-record') {
      // A previous injection's record of the user's istio-proxy, read back on re-injection.
      containers.push({ name: PROXY_CONTAINER, image: 'custom' });
      annotations[ANNOTATION.status] = JSON.stringify({ containers: [PROXY_CONTAINER], initContainers: [INIT_CONTAINER] });
      annotations[ANNOTATION.overrides] = `{"containers":[{"name":"${PROXY_CONTAINER}","image":"custom","args":${nestedText(textDepth, true)}}]}`;
    }
    Object.defineProperty(pod, fc.toStringMethod, { value: () => `deepPod(${JSON.stringify(recipe)})` });
    return pod;
  });

/** Any pod the fuzzer makes: well formed with hostile parts, huge, or deeply nested. */
export const fuzzPod: fc.Arbitrary<JsonObject> = fc.oneof(
  { weight: 10, arbitrary: hostilePod },
  { weight: 1, arbitrary: hugePod },
  { weight: 1, arbitrary: deepPod },
);

/** Whether Kubernetes' Pod schema (kubernetes-models) accepts the value. */
export function podSchemaProblems(value: unknown): string | undefined {
  try {
    new Pod(structuredClone(value) as ConstructorParameters<typeof Pod>[0]).validate();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
