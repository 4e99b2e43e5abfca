// The requests the benchmark sends: AdmissionReviews as the API server sends them for a pod CREATE, built once
// and serialised once, so the load clients only move bytes.

import type { JsonObject } from '../src/core/json.js';

/** Namespaces in the benchmark config: pods in the first are injected, pods in the second are skipped. */
export const OPTED_IN_NAMESPACE = 'shop';
export const NOT_OPTED_IN_NAMESPACE = 'legacy';

export const BENCH_CONFIG_YAML = `namespaces:
  ${OPTED_IN_NAMESPACE}:
    istio-injection: enabled
  ${NOT_OPTED_IN_NAMESPACE}: {}
`;

export interface Workload {
  /** One letter, as the issue names the workloads. */
  id: string;
  title: string;
  namespace: string;
  pod: JsonObject;
}

function envVars(count: number, prefix: string): JsonObject[] {
  const env: JsonObject[] = [];
  for (let i = 0; i < count; i++) env.push({ name: `${prefix}_SETTING_${i}`, value: `value-${i}-of-${prefix.toLowerCase()}` });
  return env;
}

function probe(path: string, port: number, initialDelaySeconds: number): JsonObject {
  return { httpGet: { path, port, scheme: 'HTTP' }, initialDelaySeconds, periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3 };
}

function deploymentMetadata(app: string): JsonObject {
  return {
    generateName: `${app}-7d9c8b6f5d-`,
    labels: { app, 'app.kubernetes.io/name': app, 'app.kubernetes.io/version': '2.4.1', 'pod-template-hash': '7d9c8b6f5d' },
    annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-11-20T10:00:00Z', 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090' },
    ownerReferences: [
      { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${app}-7d9c8b6f5d`, uid: '6f1c9a3e-1b2c-4d5e-8f90-a1b2c3d4e5f6', controller: true, blockOwnerDeletion: true },
    ],
  };
}

function appContainer(name: string, port: number, env: JsonObject[]): JsonObject {
  return {
    name,
    image: `registry.example.com/shop/${name}:2.4.1`,
    imagePullPolicy: 'IfNotPresent',
    ports: [
      { name: 'http', containerPort: port, protocol: 'TCP' },
      { name: 'metrics', containerPort: port + 1000, protocol: 'TCP' },
    ],
    env,
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
    livenessProbe: probe('/healthz', port, 10),
    readinessProbe: probe('/ready', port, 5),
    volumeMounts: [{ name: 'config', mountPath: '/etc/shop' }, { name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
  };
}

function podSpec(containers: JsonObject[]): JsonObject {
  return {
    containers,
    volumes: [
      { name: 'config', configMap: { name: 'shop-config', defaultMode: 420 } },
      { name: 'kube-api-access', projected: { defaultMode: 420, sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }] } },
    ],
    serviceAccountName: 'shop',
    restartPolicy: 'Always',
    terminationGracePeriodSeconds: 30,
    dnsPolicy: 'ClusterFirst',
    securityContext: { fsGroup: 2000 },
    schedulerName: 'default-scheduler',
    enableServiceLinks: true,
    preemptionPolicy: 'PreemptLowerPriority',
    priority: 0,
  };
}

/** A Deployment's pod of one container carrying `envCount` env vars: the subject of the cost curve. */
export function podWithEnv(envCount: number): JsonObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: deploymentMetadata('catalog'), spec: podSpec([appContainer('catalog', 8080, envVars(envCount, 'CATALOG'))]) };
}

/** A Deployment's pod of `count` containers with 30 env vars each: the cost curve in containers. */
export function podWithContainers(count: number): JsonObject {
  const containers: JsonObject[] = [];
  for (let i = 0; i < count; i++) containers.push(appContainer(`worker-${i}`, 8080 + i, envVars(30, `WORKER${i}`)));
  return { apiVersion: 'v1', kind: 'Pod', metadata: deploymentMetadata('workers'), spec: podSpec(containers) };
}

const smallPod = (): JsonObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'hello', labels: { app: 'hello' } },
  spec: { containers: [{ name: 'hello', image: 'nginx:1.27', ports: [{ containerPort: 80 }] }] },
});

const typicalPod = (): JsonObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: deploymentMetadata('checkout'),
  spec: podSpec([
    appContainer('checkout', 8080, envVars(30, 'CHECKOUT')),
    appContainer('cart-cache', 8081, envVars(30, 'CACHE')),
    appContainer('audit-shipper', 8082, envVars(30, 'AUDIT')),
  ]),
});

export const WORKLOADS: readonly Workload[] = [
  { id: 'a', title: 'small pod, 1 container', namespace: OPTED_IN_NAMESPACE, pod: smallPod() },
  { id: 'b', title: 'typical pod, 3 containers x 30 env', namespace: OPTED_IN_NAMESPACE, pod: typicalPod() },
  { id: 'c', title: 'pod with 2000 env vars', namespace: OPTED_IN_NAMESPACE, pod: podWithEnv(2000) },
  { id: 'd', title: 'skip (namespace not opted in)', namespace: NOT_OPTED_IN_NAMESPACE, pod: typicalPod() },
];

export const COST_CURVE_ENV_COUNTS = [10, 100, 1000, 10000] as const;
export const COST_CURVE_CONTAINER_COUNTS = [1, 10, 100] as const;

const POD_KIND = { group: '', version: 'v1', kind: 'Pod' };
const POD_RESOURCE = { group: '', version: 'v1', resource: 'pods' };

export function admissionReview(pod: JsonObject, namespace: string): JsonObject {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: POD_KIND,
      resource: POD_RESOURCE,
      requestKind: POD_KIND,
      requestResource: POD_RESOURCE,
      namespace,
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: 'b5a1c6c4-0f0e-4c55-9a5c-3c2b1c0d9e8f', groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'] },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  };
}

export const reviewBody = (workload: Workload): string => JSON.stringify(admissionReview(workload.pod, workload.namespace));
