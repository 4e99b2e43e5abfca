// How each golden of an Istio-style injection corpus is produced: which input, which settings, which mode. This is
// CASES.md of Istio's corpus (pkg/kube/inject/testdata/inject) translated into our config. A golden not listed is
// `<input>.injected` from `<input>` with the default settings.

export interface CaseSettings {
  /** The input file, when it is not the golden's name without ".injected". */
  input?: string;
  /** Our config, merged over the corpus' base (hub registry.istio.io/testing, tag latest). */
  config?: Record<string, unknown>;
  /** "webhook": reviewed as the admission webhook sees a pod (namespace test-ns), not by manual injection. */
  mode?: 'webhook';
  /** Why the case cannot be run here; listed in docs/compatibility.md. */
  skip?: string;
}

const native = { nativeSidecars: false };
const statusParams = {
  proxy: { statusPort: 123, readinessInitialDelaySeconds: 100, readinessPeriodSeconds: 200, readinessFailureThreshold: 300 },
};
const resources = (limits: Record<string, string | null>, requests: Record<string, string | null>) => ({
  proxy: { resources: { limits, requests } },
});
const spire = {
  templates: {
    spire: {
      spec: {
        containers: [
          { name: 'istio-proxy', volumeMounts: [{ name: 'workload-socket', mountPath: '/var/run/secrets/workload-spiffe-uds', readOnly: true }] },
        ],
        volumes: [{ name: 'workload-socket', csi: { driver: 'csi.spiffe.io', readOnly: true } }],
      },
    },
  },
};
const multus = { cni: { enabled: true, provider: 'multus' } };

export const CASES: Record<string, CaseSettings> = {
  'hello.yaml.cni.injected': { input: 'hello.yaml', config: { cni: { enabled: true }, mesh: { network: 'network1' } } },
  'hello.yaml.proxyImageName.injected': { input: 'hello.yaml', config: { images: { proxy: 'proxyTest' } } },
  'hello.yaml.proxyInitImageName.injected': { input: 'hello.yaml', config: { images: { proxyInit: 'proxyInitTest' } } },
  'hello-tproxy.yaml.injected': { input: 'hello.yaml', config: { proxyConfig: { interceptionMode: 'TPROXY' } } },
  'hello-always.yaml.injected': { input: 'hello.yaml', config: { images: { pullPolicy: 'Always' } } },
  'hello-never.yaml.injected': { input: 'hello.yaml', config: { images: { pullPolicy: 'Never' } } },
  'hello-old-version.yaml.injected': { input: 'hello.yaml', config: native },
  'format-duration.yaml.injected': { config: { proxyConfig: { drainDuration: '23s' } } },
  'traffic-params.yaml.injected': {
    config: {
      proxy: {
        includeIPRanges: '127.0.0.1/24,10.96.0.1/24',
        excludeIPRanges: '10.96.0.2/24,10.96.0.3/24',
        excludeInboundPorts: '4,5,6',
        statusPort: 0,
      },
    },
  },
  'status_params.yaml.injected': { config: statusParams },
  'kubevirtInterfaces.yaml.injected': { config: statusParams },
  'reroute-virtual-interfaces.yaml.injected': { config: statusParams },
  'hello-image-secrets-in-values.yaml.injected': { input: 'hello.yaml', config: { images: { pullSecrets: ['barSecret'] } } },
  'hello-multiple-image-secrets.yaml.injected': {
    input: 'hello-image-pull-secret.yaml',
    config: { images: { pullSecrets: ['barSecret'] } },
  },
  'hello-template-in-values.yaml.injected': { input: 'hello.yaml' },
  'hello-mount-mtls-certs.yaml.injected': { input: 'hello.yaml', config: { proxy: { mountMtlsCerts: true } } },
  'hello-cncf-networks.yaml.injected': { input: 'hello.yaml', config: multus },
  'hello-existing-cncf-networks.yaml.injected': { config: multus },
  'hello-existing-cncf-networks-json.yaml.injected': { config: multus },
  'hello.proxyHoldsApplication.yaml.injected': { input: 'hello.yaml', config: { proxy: { holdApplicationUntilProxyStarts: true } } },
  'hello-probes.proxyHoldsApplication.yaml.injected': {
    input: 'hello-probes.yaml',
    config: { proxy: { holdApplicationUntilProxyStarts: true } },
  },
  'hello-probes-noProxyHoldApplication-ProxyConfig.yaml.injected': { config: { proxy: { holdApplicationUntilProxyStarts: true } } },
  'cronjob-old-version.yaml.injected': { input: 'cronjob.yaml', config: native },
  'daemonset-old-version.yaml.injected': { input: 'daemonset.yaml', config: native },
  'job-old-version.yaml.injected': { input: 'job.yaml', config: native },
  'pod-old-version.yaml.injected': { input: 'pod.yaml', config: native },
  'replicaset-old-version.yaml.injected': { input: 'replicaset.yaml', config: native },
  'statefulset-old-version.yaml.injected': { input: 'statefulset.yaml', config: native },
  'native-sidecar-old-version.yaml.injected': { input: 'native-sidecar.yaml', config: native },
  'traffic-annotations.yaml.injected': {
    config: { proxyConfig: { proxyMetadata: { ISTIO_META_TLS_CLIENT_KEY: '/etc/identity/client/keys/client-key.pem' } } },
  },
  'proxy-override-runas.yaml.cni.injected': { input: 'proxy-override-runas.yaml', config: { cni: { enabled: true } } },
  'proxy-override-runas.yaml.tproxy.injected': {
    input: 'proxy-override-runas.yaml',
    config: { proxyConfig: { interceptionMode: 'TPROXY' } },
  },
  'proxy-override-args-native.yaml.injected': { input: 'proxy-override-args.yaml' },
  'custom-template.yaml.injected': {
    config: {
      templates: {
        custom: {
          metadata: {
            annotations: {
              'prometheus.istio.io/merge-metrics': 'false',
              'sidecar.istio.io/rewriteAppHTTPProbers': 'false',
              foo: 'bar',
            },
          },
          eachContainer: {
            env: [
              { name: 'SOME_ENV', value: 'true' },
              { name: 'SOME_FILE', value: '/var/lib/data/foo.json' },
            ],
            volumeMounts: [{ mountPath: '/var/lib/data/foo.json', subPath: 'foo.json', name: 'some-injected-file' }],
          },
          spec: {
            volumes: [
              {
                name: 'some-injected-file',
                downwardAPI: { items: [{ path: 'foo.json', fieldRef: { fieldPath: "metadata.annotations['foo']" } }] },
              },
            ],
          },
        },
      },
    },
  },
  'hello-tracing-disabled.yaml.injected': { config: { proxyConfig: { tracing: {} } } },
  'hello-openshift.yaml.injected': { mode: 'webhook', config: { cni: { enabled: true }, platform: 'openshift' } },
  'hello-openshift-custom-injection.yaml.injected': { mode: 'webhook', config: { cni: { enabled: true }, platform: 'openshift' } },
  'hello-openshift-tproxy.yaml.injected': { mode: 'webhook', config: { cni: { enabled: true }, platform: 'openshift' } },
  'hello-probes-localhost.yaml.injected': { config: { mesh: { inboundTrafficPolicyMode: 'localhost' } } },
  'proxy-resources-null.yaml.injected': { config: resources({ cpu: null, memory: '500Mi' }, { cpu: null, memory: '150Mi' }) },
  'proxy-resources-null-no-init.yaml.injected': { config: resources({ cpu: null, memory: '500Mi' }, { cpu: null, memory: '150Mi' }) },
  'proxy-resources-zero.yaml.injected': { config: resources({ cpu: '0', memory: '500Mi' }, { cpu: '0', memory: '150Mi' }) },
  'proxy-resources-memory-null.yaml.injected': { config: resources({ cpu: '100m', memory: null }, { cpu: '50m', memory: null }) },
  'proxy-resources-mixed-null.yaml.injected': {
    config: resources(
      { cpu: null, memory: '500Mi', 'ephemeral-storage': null },
      { cpu: '100m', memory: null, 'ephemeral-storage': '1Gi' },
    ),
  },
  'sidecar-spire.yaml.injected': { config: spire },
  'gateway-spire.yaml.injected': { config: spire },
  'hello-otel-semconv.yaml.injected': {
    skip: 'needs a mesh OpenTelemetry extension provider with OTEL_SEMANTIC_CONVENTIONS; this injector has no mesh extension providers',
  },
  'hello-fips-140-3.yaml.injected': { input: 'hello.yaml', config: { mesh: { compliancePolicy: 'fips-140-3' } } },
  'merge-probers.yaml.injected': { config: { proxy: { holdApplicationUntilProxyStarts: true } } },
};

/** Inputs Istio refuses: the error must name the annotation (case-insensitive), as CASES.md says. */
export const REFUSALS: Record<string, string> = {
  'traffic-annotations-bad-includeipranges.yaml': 'includeipranges',
  'traffic-annotations-bad-excludeipranges.yaml': 'excludeipranges',
  'traffic-annotations-bad-includeinboundports.yaml': 'includeinboundports',
  'traffic-annotations-bad-excludeinboundports.yaml': 'excludeinboundports',
  'traffic-annotations-bad-excludeoutboundports.yaml': 'excludeoutboundports',
};

/** The namespace Istio's harness gives webhook-mode cases (OpenShift's uid and group ranges). */
export const WEBHOOK_NAMESPACE = {
  name: 'test-ns',
  annotations: {
    'openshift.io/sa.scc.uid-range': '1000620000/10000',
    'openshift.io/sa.scc.supplemental-groups': '1000620000/10000',
  },
};
