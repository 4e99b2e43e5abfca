// The Helm chart rendered by the real helm for each supported set of values: it lints, every manifest passes
// Kubernetes' schemas with no unknown field, the config it writes is one the server accepts, and the fields that
// make the webhook safe and Istio-compatible are what they must be.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { resolveConfig } from '../src/config/schema.js';
import type { LabelSelectorRequirement } from '../src/core/labels.js';
import { describeWithHelm, RELEASE_NAMESPACE, type Release } from './helm/helm.js';
import {
  isWebhookConfiguration,
  type Manifest,
  manifestProblems,
  type MutatingWebhookConfiguration,
} from './helm/manifests.js';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const CA_BUNDLE = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');

const VALUE_SETS: Record<string, Release> = {
  'the default values': { name: 'sidecar-injector' },
  'a canary revision': { name: 'sidecar-injector-canary', values: { revision: 'canary' } },
  'a canary revision with tags': {
    name: 'sidecar-injector-canary',
    values: { revision: 'canary', revisionTags: ['prod-stable', 'default'] },
  },
  'global injection': { name: 'sidecar-injector', values: { enableNamespacesByDefault: true } },
  'cert-manager certificates': { name: 'sidecar-injector', values: { certificates: { mode: 'cert-manager' } } },
  'cert-manager certificates from a cluster issuer': {
    name: 'sidecar-injector',
    values: {
      certificates: { mode: 'cert-manager', certManager: { issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer' } } },
    },
  },
  'certificates from a Secret': {
    name: 'sidecar-injector',
    values: { certificates: { mode: 'secret', secret: { name: 'injector-tls', caBundle: CA_BUNDLE } } },
  },
  'a namespace other than istio-system': { name: 'sidecar-injector', namespace: 'mesh-injection' },
  'fail-open webhooks re-invoked when needed': {
    name: 'sidecar-injector',
    values: { webhook: { failurePolicy: 'Ignore', timeoutSeconds: 5, reinvocationPolicy: 'IfNeeded' } },
  },
};

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet: { path: string; port: string | number; scheme: string } };
  readinessProbe?: { httpGet: { path: string; port: string | number; scheme: string } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    serviceAccountName: string;
    securityContext: Record<string, unknown>;
    containers: Container[];
    volumes?: { name: string; secret?: { secretName: string }; emptyDir?: object; configMap?: { name: string } }[];
    topologySpreadConstraints?: { topologyKey: string; labelSelector: { matchLabels: Record<string, string> } }[];
  };
}
interface Workload extends Manifest {
  spec: { replicas?: number; strategy?: { rollingUpdate: Record<string, unknown> }; template: PodTemplate };
}
interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}
interface Role extends Manifest {
  rules: PolicyRule[];
}

function find<T extends Manifest = Manifest>(manifests: Manifest[], kind: string, name?: string): T {
  const found = manifests.find((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  if (!found) {
    const present = manifests.map((m) => `${m.kind}/${m.metadata.name}`);
    throw new Error(`no ${kind}${name ? ` ${name}` : ''} among ${present}`);
  }
  return found as T;
}

const all = (manifests: Manifest[], kind: string) => manifests.filter((m) => m.kind === kind);
const webhookConfigurations = (manifests: Manifest[]) => manifests.filter(isWebhookConfiguration);
const serverContainer = (manifests: Manifest[]) =>
  find<Workload>(manifests, 'Deployment').spec.template.spec.containers[0] as Container;

// ---- Istio's selectors (istio-injector.md §2.3–§2.5), to compare the rendered webhooks with --------------------

const expression = (key: string, operator: LabelSelectorRequirement['operator'], values?: string[]) =>
  values ? { key, operator, values } : { key, operator };
const NOT_OPTED_OUT = expression('sidecar.istio.io/inject', 'NotIn', ['false']);

function istioSelectors(selects: string) {
  return {
    'rev.namespace.sidecar-injector.istio.io': {
      namespaceSelector: [expression('istio.io/rev', 'In', [selects]), expression('istio-injection', 'DoesNotExist')],
      objectSelector: [NOT_OPTED_OUT],
    },
    'rev.object.sidecar-injector.istio.io': {
      namespaceSelector: [expression('istio.io/rev', 'DoesNotExist'), expression('istio-injection', 'DoesNotExist')],
      objectSelector: [NOT_OPTED_OUT, expression('istio.io/rev', 'In', [selects])],
    },
    'namespace.sidecar-injector.istio.io': {
      namespaceSelector: [expression('istio-injection', 'In', ['enabled'])],
      objectSelector: [NOT_OPTED_OUT],
    },
    'object.sidecar-injector.istio.io': {
      namespaceSelector: [expression('istio-injection', 'DoesNotExist'), expression('istio.io/rev', 'DoesNotExist')],
      objectSelector: [expression('sidecar.istio.io/inject', 'In', ['true']), expression('istio.io/rev', 'DoesNotExist')],
    },
    'auto.sidecar-injector.istio.io': {
      namespaceSelector: [
        expression('istio-injection', 'DoesNotExist'),
        expression('istio.io/rev', 'DoesNotExist'),
        expression('kubernetes.io/metadata.name', 'NotIn', [
          'kube-system',
          'kube-public',
          'kube-node-lease',
          'local-path-storage',
        ]),
      ],
      objectSelector: [expression('sidecar.istio.io/inject', 'DoesNotExist'), expression('istio.io/rev', 'DoesNotExist')],
    },
  };
}

const DEFAULT_EXCLUDED = ['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage'];
const exclusion = (releaseNamespace: string) =>
  expression('kubernetes.io/metadata.name', 'NotIn', [releaseNamespace, ...DEFAULT_EXCLUDED]);

/** The webhooks of a configuration as Istio's selectors plus our exclusion, to compare with istioSelectors. */
function selectorsOf(configuration: MutatingWebhookConfiguration, releaseNamespace: string) {
  return Object.fromEntries(
    configuration.webhooks.map((w) => {
      const namespaceExpressions = w.namespaceSelector?.matchExpressions ?? [];
      expect(namespaceExpressions.at(-1), w.name).toEqual(exclusion(releaseNamespace));
      return [
        w.name,
        { namespaceSelector: namespaceExpressions.slice(0, -1), objectSelector: w.objectSelector?.matchExpressions },
      ];
    }),
  );
}

const pick = <T extends object>(source: T, keys: (keyof T)[]) => Object.fromEntries(keys.map((k) => [k, source[k]]));

// ---- the uninstall hook's script against a stand-in API server -------------------------------------------------

interface FakeApiServer {
  kubeconfig: string;
  deleted: string[];
  dispose(): void;
}

/** Answers DELETE of MutatingWebhookConfigurations: 200 for `existing`, 404 for others, or `status` for all. */
async function fakeApiServer(existing: string[], status?: number): Promise<FakeApiServer> {
  const deleted: string[] = [];
  const server = createServer((request, response) => {
    const match = /\/mutatingwebhookconfigurations\/([^/?]+)/.exec(request.url ?? '');
    const name = match && request.method === 'DELETE' ? decodeURIComponent(match[1] as string) : undefined;
    if (name !== undefined) deleted.push(name);
    const code = status ?? (name !== undefined && existing.includes(name) ? 200 : 404);
    response.writeHead(code, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: code === 200 ? 'Success' : 'Failure', code }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dir = mkdtempSync(join(tmpdir(), 'fake-apiserver-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'fake',
          cluster: {
            server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
            // The client refuses plain HTTP unless told TLS is not verified; the stand-in has no certificate.
            'insecure-skip-tls-verify': true,
          },
        },
      ],
      users: [{ name: 'hook', user: {} }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'hook' } }],
      'current-context': 'fake',
    }),
  );
  return {
    kubeconfig,
    deleted,
    dispose: () => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs the rendered hook container's command with the repository's node_modules, as the image's /app has them. */
async function runHook(container: Container, kubeconfig: string): Promise<{ code: number; output: string }> {
  const [node, ...nodeArgs] = container.command ?? [];
  expect(node).toBe('node');
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [...nodeArgs, ...(container.args ?? [])], {
      cwd: REPO,
      env: { PATH: process.env.PATH, KUBECONFIG: kubeconfig },
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

describeWithHelm('the Helm chart', (helm) => {
  const rendered = Object.fromEntries(Object.entries(VALUE_SETS).map(([label, release]) => [label, helm.template(release)]));
  const manifestsOf = (label: keyof typeof VALUE_SETS) => rendered[label] as Manifest[];

  describe.each(Object.keys(VALUE_SETS))('with %s', (label) => {
    const release = VALUE_SETS[label] as Release;
    const manifests = manifestsOf(label);

    it('passes helm lint --strict', () => {
      const result = helm.lint(release);
      expect(result.stderr + result.stdout).toContain('0 chart(s) failed');
      expect(result.status).toBe(0);
    });

    it('renders only manifests that pass the Kubernetes schemas and have no unknown fields', async () => {
      expect(manifests.length).toBeGreaterThan(10);
      const problems = (await Promise.all(manifests.map(manifestProblems))).flat();
      expect(problems).toEqual([]);
    });

    it('writes a config the server accepts, with the revision, tags and global injection the webhooks select on', () => {
      const configMap = find<Manifest & { data: Record<string, string> }>(manifests, 'ConfigMap');
      const config = resolveConfig(parse(configMap.data['config.yaml'] as string));
      const values = release.values ?? {};
      expect(config.revision).toBe(values.revision ?? '');
      expect(config.tags).toEqual(values.revisionTags ?? []);
      expect(config.enableNamespacesByDefault).toBe(values.enableNamespacesByDefault ?? false);
    });

    it('puts every namespaced object in the release namespace', () => {
      const clusterWide = /^(MutatingWebhookConfiguration|ClusterRole|ClusterRoleBinding)$/;
      const namespaced = manifests.filter((m) => !clusterWide.test(m.kind));
      expect(namespaced.map((m) => `${m.kind}/${m.metadata.name} in ${m.metadata.namespace}`)).toEqual(
        namespaced.map((m) => `${m.kind}/${m.metadata.name} in ${release.namespace ?? RELEASE_NAMESPACE}`),
      );
    });
  });

  describe('webhook configurations', () => {
    it("the default revision's has Istio's four webhooks in Istio's order, each calling the sidecar-injector Service on /inject", () => {
      const [configuration, ...others] = webhookConfigurations(manifestsOf('the default values'));
      expect(others).toEqual([]);
      expect(configuration?.metadata.name).toBe('sidecar-injector');
      expect(configuration?.metadata.labels?.['sidecar-injector/revision']).toBe('default');
      expect(configuration?.webhooks.map((w) => w.name)).toEqual([
        'rev.namespace.sidecar-injector.istio.io',
        'rev.object.sidecar-injector.istio.io',
        'namespace.sidecar-injector.istio.io',
        'object.sidecar-injector.istio.io',
      ]);
      for (const webhook of configuration?.webhooks ?? []) {
        expect(webhook.clientConfig).toEqual({
          service: { name: 'sidecar-injector', namespace: 'istio-system', path: '/inject', port: 443 },
        });
        expect(webhook.rules).toEqual([
          { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] },
        ]);
        const policies = ['failurePolicy', 'timeoutSeconds', 'reinvocationPolicy', 'sideEffects', 'admissionReviewVersions'];
        expect(pick(webhook, policies as (keyof typeof webhook)[])).toEqual({
          failurePolicy: 'Fail',
          timeoutSeconds: 10,
          reinvocationPolicy: 'Never',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
        });
      }
    });

    it("the default revision's webhooks keep Istio's selectors and only add the exclusion of protected namespaces", () => {
      const [configuration] = webhookConfigurations(manifestsOf('the default values'));
      const { 'auto.sidecar-injector.istio.io': _auto, ...fourWebhooks } = istioSelectors('default');
      expect(selectorsOf(configuration as MutatingWebhookConfiguration, 'istio-system')).toEqual(fourWebhooks);
    });

    it("global injection adds Istio's auto webhook last", () => {
      const [configuration] = webhookConfigurations(manifestsOf('global injection'));
      expect(selectorsOf(configuration as MutatingWebhookConfiguration, 'istio-system')).toEqual(istioSelectors('default'));
      expect(configuration?.webhooks.at(-1)?.name).toBe('auto.sidecar-injector.istio.io');
    });

    it('a named revision has only the two rev.* webhooks, selecting its name and calling its own Service', () => {
      const [configuration, ...others] = webhookConfigurations(manifestsOf('a canary revision'));
      expect(others).toEqual([]);
      expect(configuration?.metadata.name).toBe('sidecar-injector-canary');
      expect(configuration?.metadata.labels?.['sidecar-injector/revision']).toBe('canary');
      expect(selectorsOf(configuration as MutatingWebhookConfiguration, 'istio-system')).toEqual(
        pick(istioSelectors('canary'), ['rev.namespace.sidecar-injector.istio.io', 'rev.object.sidecar-injector.istio.io']),
      );
      expect(configuration?.webhooks.map((w) => w.clientConfig.service?.name)).toEqual([
        'sidecar-injector-canary',
        'sidecar-injector-canary',
      ]);
    });

    it('each revision tag gets its own configuration selecting the tag and calling the revision Service; the default tag also answers the legacy labels', () => {
      const configurations = webhookConfigurations(manifestsOf('a canary revision with tags'));
      expect(configurations.map((c) => [c.metadata.name, c.metadata.labels?.['sidecar-injector/tag'] ?? null])).toEqual([
        ['sidecar-injector-canary', null],
        ['sidecar-injector-revision-tag-prod-stable', 'prod-stable'],
        ['sidecar-injector-revision-tag-default', 'default'],
      ]);
      const [, prodStable, defaultTag] = configurations as MutatingWebhookConfiguration[];
      const { 'auto.sidecar-injector.istio.io': _auto, ...legacy } = istioSelectors('default');
      const tagSelectors = istioSelectors('prod-stable');
      expect(selectorsOf(prodStable as MutatingWebhookConfiguration, 'istio-system')).toEqual(
        pick(tagSelectors, ['rev.namespace.sidecar-injector.istio.io', 'rev.object.sidecar-injector.istio.io']),
      );
      expect(selectorsOf(defaultTag as MutatingWebhookConfiguration, 'istio-system')).toEqual(legacy);
      for (const configuration of configurations) {
        expect(configuration.metadata.labels?.['sidecar-injector/revision']).toBe('canary');
        const services = new Set(configuration.webhooks.map((w) => w.clientConfig.service?.name));
        expect(services).toEqual(new Set(['sidecar-injector-canary']));
      }
    });

    it("none carries istio.io/rev, so the certificate patcher of istiod's same-named revision never rewrites its caBundle", () => {
      const labelled = Object.values(rendered)
        .flatMap(webhookConfigurations)
        .filter((c) => c.metadata.labels?.['istio.io/rev'] !== undefined);
      expect(labelled.map((c) => c.metadata.name)).toEqual([]);
    });

    it('failurePolicy, timeoutSeconds and reinvocationPolicy come from the values', () => {
      const manifests = manifestsOf('fail-open webhooks re-invoked when needed');
      const webhooks = webhookConfigurations(manifests).flatMap((c) => c.webhooks);
      expect(new Set(webhooks.map((w) => `${w.failurePolicy} ${w.timeoutSeconds}s ${w.reinvocationPolicy}`))).toEqual(
        new Set(['Ignore 5s IfNeeded']),
      );
    });

    it('outside istio-system, cluster-wide names carry the namespace and the exclusion protects that namespace', () => {
      const manifests = manifestsOf('a namespace other than istio-system');
      const [configuration] = webhookConfigurations(manifests);
      expect(configuration?.metadata.name).toBe('sidecar-injector-mesh-injection');
      expect(find(manifests, 'ClusterRole', 'sidecar-injector-mesh-injection')).toBeDefined();
      expect(configuration?.webhooks[0]?.clientConfig.service).toMatchObject({
        name: 'sidecar-injector',
        namespace: 'mesh-injection',
      });
      selectorsOf(configuration as MutatingWebhookConfiguration, 'mesh-injection');
    });
  });

  describe('the server Deployment', () => {
    const manifests = manifestsOf('the default values');
    const deployment = find<Workload>(manifests, 'Deployment', 'sidecar-injector');
    const pod = deployment.spec.template;
    const container = serverContainer(manifests);

    it('runs two replicas, spread over nodes, replaced surge-first and covered by a disruption budget', () => {
      expect(deployment.spec.replicas).toBe(2);
      expect(deployment.spec.strategy?.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
      const byNode = pod.spec.topologySpreadConstraints?.find((c) => c.topologyKey === 'kubernetes.io/hostname');
      expect(byNode?.labelSelector.matchLabels).toEqual(
        (deployment.spec as unknown as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels,
      );
      const budget = find<Manifest & { spec: object }>(manifests, 'PodDisruptionBudget');
      expect(budget.spec).toEqual({ maxUnavailable: 1, selector: (deployment.spec as unknown as { selector: unknown }).selector });
    });

    it('runs as a numeric non-root user with a read-only root file system and no capabilities', () => {
      expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 });
      expect(container.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(container.resources?.requests).toEqual({ cpu: '100m', memory: '128Mi' });
      expect(container.resources?.limits?.memory).toBeDefined();
    });

    it('probes /healthz and /readyz over HTTPS on the port the server listens on and the Service forwards 443 to', () => {
      const port = container.ports?.find((p) => p.name === 'https-webhook');
      expect(port?.containerPort).toBe(9443);
      expect(container.args).toContain('--port=9443');
      expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'https-webhook', scheme: 'HTTPS' });
      expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'https-webhook', scheme: 'HTTPS' });
      const service = find<Manifest & { spec: { selector: Record<string, string>; ports: object[] } }>(manifests, 'Service');
      expect(service.metadata.name).toBe('sidecar-injector');
      expect(service.spec.ports).toEqual([
        { name: 'https-webhook', port: 443, targetPort: 'https-webhook', protocol: 'TCP' },
      ]);
      expect(pod.metadata.labels).toMatchObject(service.spec.selector);
    });

    it('reads its config from the ConfigMap and restarts when the config changes', () => {
      expect(container.args?.slice(0, 4)).toEqual([
        'serve',
        '--port=9443',
        '--cert-dir=/var/run/sidecar-injector/certs',
        '--config=/etc/sidecar-injector/config.yaml',
      ]);
      expect(pod.spec.volumes?.find((v) => v.name === 'config')?.configMap?.name).toBe('sidecar-injector');
      const canaryPod = find<Workload>(manifestsOf('a canary revision'), 'Deployment').spec.template;
      expect(pod.metadata.annotations?.['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
      expect(canaryPod.metadata.annotations?.['checksum/config']).not.toBe(pod.metadata.annotations?.['checksum/config']);
    });

    it('a named revision names its Deployment, Service, ServiceAccount and ConfigMap after the revision', () => {
      const canary = manifestsOf('a canary revision');
      for (const kind of ['Deployment', 'Service', 'ServiceAccount', 'ConfigMap', 'PodDisruptionBudget']) {
        expect(find(canary, kind).metadata.name, kind).toBe('sidecar-injector-canary');
      }
    });
  });

  describe('certificates and permissions', () => {
    const rulesOf = (manifests: Manifest[], kind: 'ClusterRole' | 'Role') =>
      all(manifests, kind)
        .filter((m) => m.metadata.annotations?.['helm.sh/hook'] === undefined)
        .flatMap((m) => (m as Role).rules);

    it('self-managed: the server gets the Secret and webhook configuration names, and may touch only those', () => {
      const manifests = manifestsOf('a canary revision with tags');
      const names = [
        'sidecar-injector-canary',
        'sidecar-injector-revision-tag-prod-stable',
        'sidecar-injector-revision-tag-default',
      ];
      const container = serverContainer(manifests);
      expect(container.args?.slice(4)).toEqual([
        '--cert-secret=sidecar-injector-canary-tls',
        ...names.map((name) => `--webhook-config=${name}`),
      ]);
      expect(container.env).toEqual([
        { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      ]);
      expect(rulesOf(manifests, 'ClusterRole')).toEqual([
        { apiGroups: [''], resources: ['namespaces'], verbs: ['list', 'watch'] },
        {
          apiGroups: ['admissionregistration.k8s.io'],
          resources: ['mutatingwebhookconfigurations'],
          resourceNames: names,
          verbs: ['get', 'list', 'watch', 'patch'],
        },
      ]);
      expect(rulesOf(manifests, 'Role')).toEqual([
        {
          apiGroups: [''],
          resources: ['secrets'],
          resourceNames: ['sidecar-injector-canary-tls'],
          verbs: ['get', 'list', 'watch', 'update'],
        },
        { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
      ]);
      for (const configuration of webhookConfigurations(manifests)) {
        expect(configuration.webhooks.filter((w) => w.clientConfig.caBundle !== undefined)).toEqual([]);
      }
    });

    it('cert-manager: a CA chain of the release issues the serving certificate the pod mounts, and cainjector fills every caBundle', () => {
      const manifests = manifestsOf('cert-manager certificates');
      const serving = find<Manifest & { spec: { secretName: string; dnsNames: string[]; issuerRef: object } }>(
        manifests,
        'Certificate',
        'sidecar-injector-serving',
      );
      expect(serving.spec.dnsNames).toContain('sidecar-injector.istio-system.svc');
      expect(serving.spec.issuerRef).toEqual({ name: 'sidecar-injector-ca', kind: 'Issuer' });
      expect(all(manifests, 'Issuer').map((m) => m.metadata.name)).toEqual([
        'sidecar-injector-selfsigned',
        'sidecar-injector-ca',
      ]);
      const pod = find<Workload>(manifests, 'Deployment').spec.template;
      expect(pod.spec.volumes?.find((v) => v.name === 'certs')?.secret?.secretName).toBe(serving.spec.secretName);
      for (const configuration of webhookConfigurations(manifests)) {
        expect(configuration.metadata.annotations?.['cert-manager.io/inject-ca-from']).toBe(
          'istio-system/sidecar-injector-serving',
        );
      }
      const certificateFlags = serverContainer(manifests).args?.filter((a) => /^--(cert-secret|webhook-config)=/.test(a));
      expect(certificateFlags).toEqual([]);
      expect(rulesOf(manifests, 'ClusterRole')).toEqual([
        { apiGroups: [''], resources: ['namespaces'], verbs: ['list', 'watch'] },
      ]);
      expect(rulesOf(manifests, 'Role')).toEqual([]);
    });

    it('cert-manager with an issuer of the cluster: no CA chain of its own, the serving certificate names that issuer', () => {
      const manifests = manifestsOf('cert-manager certificates from a cluster issuer');
      expect(all(manifests, 'Issuer')).toEqual([]);
      const certificates = all(manifests, 'Certificate') as (Manifest & { spec: { issuerRef: object } })[];
      expect(certificates.map((m) => m.spec.issuerRef)).toEqual([
        { name: 'corp-ca', kind: 'ClusterIssuer' },
      ]);
    });

    it('a Secret of the user: mounted read-only, its CA in every caBundle, no certificate permissions', () => {
      const manifests = manifestsOf('certificates from a Secret');
      const pod = find<Workload>(manifests, 'Deployment').spec.template;
      expect(pod.spec.volumes?.find((v) => v.name === 'certs')?.secret?.secretName).toBe('injector-tls');
      expect(serverContainer(manifests).volumeMounts?.find((m) => m.name === 'certs')?.readOnly).toBe(true);
      const bundles = webhookConfigurations(manifests).flatMap((c) => c.webhooks.map((w) => w.clientConfig.caBundle));
      expect(new Set(bundles)).toEqual(new Set([CA_BUNDLE]));
      expect(rulesOf(manifests, 'Role')).toEqual([]);
    });
  });

  describe('the uninstall hook', () => {
    const manifests = manifestsOf('a canary revision with tags');
    const names = webhookConfigurations(manifests).map((c) => c.metadata.name);
    const job = find<Workload>(manifests, 'Job');
    const container = job.spec.template.spec.containers[0] as Container;

    it('is a pre-delete Job, after its own account and RBAC, deleting every webhook configuration of the release', () => {
      const hooks = manifests.filter((m) => m.metadata.annotations?.['helm.sh/hook'] === 'pre-delete');
      expect(hooks.map((m) => `${m.kind} ${m.metadata.annotations?.['helm.sh/hook-weight']}`)).toEqual([
        'ServiceAccount -1',
        'ClusterRole -1',
        'ClusterRoleBinding -1',
        'Job 0',
      ]);
      expect(container.args).toEqual(names);
      expect(container.image).toBe(serverContainer(manifests).image);
      const role = find<Role>(manifests, 'ClusterRole', 'sidecar-injector-canary-uninstall-hook');
      expect(role.rules).toEqual([
        {
          apiGroups: ['admissionregistration.k8s.io'],
          resources: ['mutatingwebhookconfigurations'],
          resourceNames: names,
          verbs: ['delete'],
        },
      ]);
      expect(job.spec.template.spec.serviceAccountName).toBe('sidecar-injector-canary-uninstall-hook');
      expect(job.spec.template.metadata.labels['sidecar.istio.io/inject']).toBe('false');
    });

    it('deletes the configurations through the API, counting one already gone as deleted', async () => {
      const api = await fakeApiServer(names.slice(0, 2));
      try {
        const result = await runHook(container, api.kubeconfig);
        expect(result.output).toContain(`MutatingWebhookConfiguration ${names[2]} was already gone`);
        expect(result.code).toBe(0);
        expect(api.deleted).toEqual(names);
      } finally {
        api.dispose();
      }
    });

    it('fails, so helm uninstall stops and says so, when the API refuses the deletion', async () => {
      const api = await fakeApiServer(names, 403);
      try {
        const result = await runHook(container, api.kubeconfig);
        expect(result.code).toBe(1);
        expect(result.output).toContain(`cannot delete MutatingWebhookConfiguration ${names[0]}: HTTP 403`);
        expect(api.deleted).toEqual([names[0]]);
      } finally {
        api.dispose();
      }
    });
  });

  describe('values it refuses', () => {
    it.each([
      [{ revision: 'default' }, 'use "" for the default revision'],
      [{ revision: 'Canary_1' }, "/revision': '"],
      [{ revision: 'canary', revisionTags: ['canary'] }, 'revisionTags: "canary" is the revision itself'],
      [{ revisionTags: ['default'] }, 'revisionTags: "default" is the revision itself'],
      [{ config: { revision: 'canary' } }, 'config.revision: set it at the top level'],
      [{ certificates: { mode: 'vault' } }, "/certificates/mode': value must be one of"],
      [{ certificates: { mode: 'secret' } }, 'certificates.mode secret needs certificates.secret.name'],
      [{ webhook: { failurePolicy: 'Never' } }, "/webhook/failurePolicy': value must be one of"],
      [{ port: 443 }, "/port': minimum"],
    ])('values %j fail with a message naming %j', (values, message) => {
      expect(helm.templateError({ name: 'sidecar-injector', values })).toContain(message);
    });
  });
});
