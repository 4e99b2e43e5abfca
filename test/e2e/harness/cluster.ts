// The API server as the tests drive it, through @kubernetes/client-node: namespaces, pods and Deployments, and
// pods read back as the API server stored them.

import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';

/** The field manager of everything the tests apply, as helm's would be. */
const FIELD_MANAGER = 'e2e';
const POLL_INTERVAL_MS = 200;
/** Controllers and informers act within a second or two here; this bounds waiting on one that never does. */
const WAIT_TIMEOUT_MS = 30_000;

const SIDECAR_STATUS = 'sidecar.istio.io/status';
const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';

/** The API server's Status message of a refused call, or the error's own message. */
export function apiMessage(error: unknown): string {
  if (error instanceof k8s.ApiException) {
    try {
      return String((JSON.parse(String(error.body)) as { message?: unknown }).message);
    } catch {
      return `${error.code}: ${String(error.body)}`;
    }
  }
  return (error as Error).message;
}

/** Polls until `check` returns something other than undefined; on timeout, says what it waited for. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = WAIT_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(POLL_INTERVAL_MS);
  }
}

/** istio-proxy is an init container when it runs as a native sidecar. */
const allContainers = (pod: k8s.V1Pod) => [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];

export function istioContainers(pod: k8s.V1Pod): string[] {
  return allContainers(pod)
    .map((container) => container.name)
    .filter((name) => name.startsWith('istio-'))
    .sort();
}

/** The revision recorded in sidecar.istio.io/status, or undefined for a pod nobody injected. */
export function injectedRevision(pod: k8s.V1Pod): string | undefined {
  const status = pod.metadata?.annotations?.[SIDECAR_STATUS];
  return status === undefined ? undefined : (JSON.parse(status) as { revision: string }).revision;
}

export function proxyEnv(pod: k8s.V1Pod, name: string): string | undefined {
  const proxy = allContainers(pod).find((container) => container.name === 'istio-proxy');
  return proxy?.env?.find((variable) => variable.name === name)?.value;
}

export function podSpec(name: string, labels: Record<string, string> = {}): k8s.V1Pod {
  return { metadata: { name, labels }, spec: { containers: [{ name: 'app', image: 'nginx' }] } };
}

export class Cluster {
  readonly core: k8s.CoreV1Api;
  private readonly apps: k8s.AppsV1Api;
  readonly admission: k8s.AdmissionregistrationV1Api;
  private readonly objects: k8s.KubernetesObjectApi;

  constructor(private readonly kubeConfig: k8s.KubeConfig) {
    this.core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
    this.admission = kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api);
    this.objects = k8s.KubernetesObjectApi.makeApiClient(kubeConfig);
  }

  static fromFile(path: string): Cluster {
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromFile(path);
    return new Cluster(kubeConfig);
  }

  /**
   * With its default ServiceAccount, which pods need to be admitted: the controller-manager creates it too, but
   * only about a second later.
   */
  async createNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
    await this.core.createNamespace({ body: { metadata: { name, labels } } });
    try {
      await this.core.createNamespacedServiceAccount({ namespace: name, body: { metadata: { name: 'default' } } });
    } catch (error) {
      if (!(error instanceof k8s.ApiException && error.code === 409)) throw error;
    }
  }

  /** null removes a label, as `kubectl label namespace NAME key-` does. */
  async labelNamespace(name: string, labels: Record<string, string | null>): Promise<void> {
    await this.objects.patch(
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: labels as Record<string, string> } },
      undefined,
      undefined,
      FIELD_MANAGER,
      undefined,
      k8s.PatchStrategy.MergePatch,
    );
  }

  createPod(namespace: string, pod: k8s.V1Pod): Promise<k8s.V1Pod> {
    return this.core.createNamespacedPod({ namespace, body: pod });
  }

  /** Through every admission stage, webhooks included, without storing anything. */
  dryRunPod(namespace: string, pod: k8s.V1Pod): Promise<k8s.V1Pod> {
    return this.core.createNamespacedPod({ namespace, body: pod, dryRun: 'All' });
  }

  readPod(namespace: string, name: string): Promise<k8s.V1Pod> {
    return this.core.readNamespacedPod({ namespace, name });
  }

  async pods(namespace: string, labelSelector: string): Promise<k8s.V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace, labelSelector })).items;
  }

  /**
   * A Deployment whose rollouts create every new pod at once: without a kubelet no pod ever becomes ready, so a
   * rollout that waits for readiness would create only the first.
   */
  async createDeployment(namespace: string, name: string, replicas: number): Promise<void> {
    const labels = { app: name };
    await this.apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name },
        spec: {
          replicas,
          selector: { matchLabels: labels },
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '100%', maxUnavailable: 0 } },
          template: { metadata: { labels }, spec: { containers: [{ name: name, image: 'nginx' }] } },
        },
      },
    });
  }

  /** What `kubectl rollout restart` does: a new pod template annotation, so a new ReplicaSet. */
  async restartDeployment(namespace: string, name: string): Promise<void> {
    await this.objects.patch(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name, namespace },
        spec: { template: { metadata: { annotations: { [RESTARTED_AT]: new Date().toISOString() } } } },
      },
      undefined,
      undefined,
      FIELD_MANAGER,
      undefined,
      k8s.PatchStrategy.StrategicMergePatch,
    );
  }

  /** The pods of the Deployment's current ReplicaSet, once the ReplicaSet controller has created them all. */
  async waitForDeploymentPods(namespace: string, name: string): Promise<k8s.V1Pod[]> {
    return waitFor(`the pods of Deployment ${namespace}/${name}`, async () => {
      const deployment = await this.apps.readNamespacedDeployment({ namespace, name });
      // Until the controller has seen the latest spec, the current ReplicaSet may still be the previous one.
      if (deployment.status?.observedGeneration !== deployment.metadata?.generation) return undefined;
      const replicaSets = await this.apps.listNamespacedReplicaSet({ namespace, labelSelector: `app=${name}` });
      const current = replicaSets.items.find(
        (replicaSet) =>
          replicaSet.metadata?.annotations?.['deployment.kubernetes.io/revision'] ===
          deployment.metadata?.annotations?.['deployment.kubernetes.io/revision'],
      );
      if (!current) return undefined;
      const pods = (await this.pods(namespace, `app=${name}`)).filter((pod) =>
        pod.metadata?.ownerReferences?.some((owner) => owner.uid === current.metadata?.uid),
      );
      return pods.length === deployment.spec?.replicas ? pods : undefined;
    });
  }

  /** Server-side apply with force, as `helm upgrade` and `kubectl apply --server-side` do. */
  async apply(manifest: k8s.KubernetesObject): Promise<void> {
    await this.objects.patch(manifest, undefined, undefined, FIELD_MANAGER, true, k8s.PatchStrategy.ServerSideApply);
  }

  async delete(manifest: k8s.KubernetesObject): Promise<void> {
    await this.objects.delete(manifest);
  }

  async list(apiVersion: string, kind: string, labelSelector: string): Promise<k8s.KubernetesObject[]> {
    const { items } = await this.objects.list(apiVersion, kind, undefined, undefined, undefined, undefined, undefined, labelSelector);
    // A list's items carry neither, and every other call needs both.
    return items.map((item) => ({ ...item, apiVersion, kind }));
  }

  /** A kubeconfig that acts as the ServiceAccount, with a token from the TokenRequest API, as a pod's would. */
  async serviceAccountKubeconfig(namespace: string, name: string): Promise<string> {
    const request = await this.core.createNamespacedServiceAccountToken({ namespace, name, body: { spec: { expirationSeconds: 3600 } } });
    const cluster = this.kubeConfig.getCurrentCluster()!;
    const caData = cluster.caData ?? '';
    return stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: { server: cluster.server, 'certificate-authority-data': caData } }],
      users: [{ name, user: { token: request.status?.token } }],
      contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: name, namespace } }],
      'current-context': 'e2e',
    });
  }
}
