// The workload a pod belongs to, derived from its owner reference as istiod's GetDeployMetaFromPod does
// (istio-injector.md §1.3 step 6). It names the proxy's ISTIO_META_WORKLOAD_NAME and ISTIO_META_OWNER.

import { LABEL } from './constants.js';
import { isObject, type JsonObject } from './json.js';
import { own, type StringMap } from './labels.js';
import type { WorkloadRef } from './templates/template.js';

const CRONJOB_JOB_NAME = /^(.+)-\d{8,10}$/;

export function workloadOf(metadata: JsonObject | undefined): WorkloadRef {
  const name = typeof metadata?.name === 'string' ? metadata.name : '';
  const pod: WorkloadRef = { name, kind: 'Pod', apiVersion: 'v1' };
  if (!metadata || typeof metadata.generateName !== 'string' || metadata.generateName === '') return pod;
  const owners = Array.isArray(metadata.ownerReferences) ? metadata.ownerReferences : [];
  const controller = owners.find((o) => isObject(o) && o.controller === true) as JsonObject | undefined;
  if (!controller || typeof controller.kind !== 'string' || typeof controller.name !== 'string') return pod;
  const labels = metadata.labels as StringMap | undefined;
  const owner: WorkloadRef = {
    name: controller.name,
    kind: controller.kind,
    apiVersion: typeof controller.apiVersion === 'string' ? controller.apiVersion : '',
  };
  if (owner.kind === 'ReplicaSet') {
    const hash = own(labels, LABEL.podTemplateHash);
    if (hash !== undefined && owner.name.endsWith(`-${hash}`)) {
      return { name: owner.name.slice(0, -(hash.length + 1)), kind: 'Deployment', apiVersion: 'apps/v1' };
    }
    const rolloutsHash = own(labels, LABEL.rolloutsPodTemplateHash);
    if (rolloutsHash !== undefined && owner.name.endsWith(`-${rolloutsHash}`)) {
      return { name: owner.name.slice(0, -(rolloutsHash.length + 1)), kind: 'Rollout', apiVersion: 'argoproj.io/v1alpha1' };
    }
  }
  if (owner.kind === 'ReplicationController') {
    const deploymentConfig = own(labels, LABEL.deploymentConfig);
    if (deploymentConfig !== undefined) {
      return { name: deploymentConfig, kind: 'DeploymentConfig', apiVersion: 'apps.openshift.io/v1' };
    }
  }
  if (owner.kind === 'Job') {
    const match = CRONJOB_JOB_NAME.exec(owner.name);
    if (match?.[1]) return { name: match[1], kind: 'CronJob', apiVersion: 'batch/v1' };
  }
  return owner;
}
