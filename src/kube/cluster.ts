// Whether this process has cluster access, and the client configuration for it. Only two signals count: the
// in-cluster environment the kubelet sets, or an explicit KUBECONFIG. A developer's ~/.kube/config alone does not
// make `npm start` talk to whatever cluster it points at.

import type { KubeConfig } from '@kubernetes/client-node';
import { ClusterAccessError } from '../errors.js';

export async function clusterAccessFromEnvironment(): Promise<KubeConfig | undefined> {
  const kubeconfigPath = process.env.KUBECONFIG;
  const inCluster = Boolean(process.env.KUBERNETES_SERVICE_HOST);
  if (!kubeconfigPath && !inCluster) return undefined;
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kubeConfig = new KubeConfig();
  const source = kubeconfigPath ? `KUBECONFIG=${kubeconfigPath}` : 'the in-cluster service account';
  try {
    // loadFromDefault reads KUBECONFIG, including a list of files to merge.
    if (kubeconfigPath) kubeConfig.loadFromDefault();
    else kubeConfig.loadFromCluster();
  } catch (error) {
    throw new ClusterAccessError(`cannot load cluster access from ${source}: ${(error as Error).message}`);
  }
  if (!kubeConfig.getCurrentCluster()) {
    throw new ClusterAccessError(`cannot load cluster access from ${source}: it names no current cluster`);
  }
  return kubeConfig;
}
