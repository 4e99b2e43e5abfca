// Istio's names and ports, in one place. Every value here is what istiod's injector uses, so that pods injected
// by us and by istiod are interchangeable.

export const PROXY_CONTAINER = 'istio-proxy';
export const INIT_CONTAINER = 'istio-init';

export const PORTS = {
  /** Envoy's outbound capture listener (istio-iptables -p). */
  outboundCapture: 15001,
  /** Envoy's inbound capture listener (istio-iptables -z). */
  inboundCapture: 15006,
  /** Envoy's Prometheus listener, /stats/prometheus. */
  envoyPrometheus: 15090,
  /** Envoy's readiness listener, /healthz/ready. */
  readiness: 15021,
  /** pilot-agent's status port: merged metrics, app probes, drain. */
  agentStatus: 15020,
  /** istiod's TLS xDS and CA port. */
  istiodTls: 15012,
  /** istiod's plaintext xDS port. */
  istiodPlaintext: 15010,
  /** Envoy's admin listener on 127.0.0.1. */
  envoyAdmin: 15000,
} as const;

/** The uid and gid the proxy runs as; istio-iptables exempts this uid from redirection. */
export const PROXY_UID = 1337;

export const VALIDATION_CONTAINER = 'istio-validation';

export const LABEL = {
  injection: 'istio-injection',
  rev: 'istio.io/rev',
  inject: 'sidecar.istio.io/inject',
  tlsMode: 'security.istio.io/tlsMode',
  canonicalName: 'service.istio.io/canonical-name',
  canonicalRevision: 'service.istio.io/canonical-revision',
  workloadName: 'service.istio.io/workload-name',
  podTemplateHash: 'pod-template-hash',
  rolloutsPodTemplateHash: 'rollouts-pod-template-hash',
  deploymentConfig: 'deploymentconfig',
  namespaceName: 'kubernetes.io/metadata.name',
  network: 'topology.istio.io/network',
} as const;

export const ANNOTATION = {
  inject: 'sidecar.istio.io/inject',
  status: 'sidecar.istio.io/status',
  rev: 'istio.io/rev',
  defaultContainer: 'kubectl.kubernetes.io/default-container',
  defaultLogsContainer: 'kubectl.kubernetes.io/default-logs-container',
  nativeSidecar: 'sidecar.istio.io/nativeSidecar',
  interceptionMode: 'sidecar.istio.io/interceptionMode',
  statusPort: 'status.sidecar.istio.io/port',
  includeOutboundIPRanges: 'traffic.sidecar.istio.io/includeOutboundIPRanges',
  excludeOutboundIPRanges: 'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  includeInboundPorts: 'traffic.sidecar.istio.io/includeInboundPorts',
  excludeInboundPorts: 'traffic.sidecar.istio.io/excludeInboundPorts',
  includeOutboundPorts: 'traffic.sidecar.istio.io/includeOutboundPorts',
  excludeOutboundPorts: 'traffic.sidecar.istio.io/excludeOutboundPorts',
  excludeInterfaces: 'traffic.sidecar.istio.io/excludeInterfaces',
  kubevirtInterfaces: 'traffic.sidecar.istio.io/kubevirtInterfaces',
  rerouteVirtualInterfaces: 'istio.io/reroute-virtual-interfaces',
  readinessInitialDelaySeconds: 'readiness.status.sidecar.istio.io/initialDelaySeconds',
  readinessPeriodSeconds: 'readiness.status.sidecar.istio.io/periodSeconds',
  readinessFailureThreshold: 'readiness.status.sidecar.istio.io/failureThreshold',
  proxyCPU: 'sidecar.istio.io/proxyCPU',
  proxyMemory: 'sidecar.istio.io/proxyMemory',
  proxyCPULimit: 'sidecar.istio.io/proxyCPULimit',
  proxyMemoryLimit: 'sidecar.istio.io/proxyMemoryLimit',
  proxyImage: 'sidecar.istio.io/proxyImage',
  logLevel: 'sidecar.istio.io/logLevel',
  componentLogLevel: 'sidecar.istio.io/componentLogLevel',
  agentLogLevel: 'sidecar.istio.io/agentLogLevel',
  proxyImageType: 'sidecar.istio.io/proxyImageType',
  proxyConfig: 'proxy.istio.io/config',
  overrides: 'proxy.istio.io/overrides',
  templates: 'inject.istio.io/templates',
  bootstrapOverride: 'sidecar.istio.io/bootstrapOverride',
  userVolume: 'sidecar.istio.io/userVolume',
  userVolumeMount: 'sidecar.istio.io/userVolumeMount',
  rewriteAppHTTPProbers: 'sidecar.istio.io/rewriteAppHTTPProbers',
  capNetBindService: 'sidecar.istio.io/capNetBindService',
  enableCoreDump: 'sidecar.istio.io/enableCoreDump',
  mergeMetrics: 'prometheus.istio.io/merge-metrics',
  scrapeTargets: 'prometheus.istio.io/scrape-targets',
  readinessApplicationPorts: 'readiness.status.sidecar.istio.io/applicationPorts',
  multusNetworks: 'k8s.v1.cni.cncf.io/networks',
} as const;

/** Namespaces istiod never injects into (pkg/kube/inject/initializer.go). istio-system is deliberately absent. */
export const IGNORED_NAMESPACES: ReadonlySet<string> = new Set([
  'kube-system',
  'kube-public',
  'kube-node-lease',
  'local-path-storage',
]);

/** The revision name written to pods and used in selectors when the server runs the unnamed revision. */
export const DEFAULT_REVISION = 'default';
