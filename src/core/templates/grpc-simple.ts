// The built-in `grpc-simple` template: proxyless gRPC. No proxy at all; an init container writes the gRPC xDS
// bootstrap that every application container reads (grpc-simple.yaml in Istio's chart).

import type { JsonObject } from '../json.js';
import type { PartialPod, TemplateContext } from './template.js';

const BOOTSTRAP_DIR = '/var/lib/grpc/data/';
const VOLUME = 'grpc-io-proxyless-bootstrap';

const WRITE_BOOTSTRAP = `NODE_ID="sidecar~\${INSTANCE_IP}~\${POD_NAME}.\${POD_NAMESPACE}~cluster.local"
SERVER_URI="dns:///istiod.\${ISTIO_NAMESPACE}.svc:15010"
echo '
{
  "xds_servers": [
    {
      "server_uri": "'\${SERVER_URI}'",
      "channel_creds": [{"type": "insecure"}],
      "server_features" : ["xds_v3"]
    }
  ],
  "node": {
    "id": "'\${NODE_ID}'",
    "metadata": {
      "GENERATOR": "grpc"
    }
  }
}' > /var/lib/grpc/data/bootstrap.json`;

const fieldRef = (name: string, fieldPath: string): JsonObject => ({ name, valueFrom: { fieldRef: { fieldPath } } });

export function grpcSimpleTemplate(ctx: TemplateContext): PartialPod {
  const mount = { mountPath: BOOTSTRAP_DIR, name: VOLUME };
  return {
    metadata: { annotations: { 'sidecar.istio.io/rewriteAppHTTPProbers': 'false' } },
    spec: {
      initContainers: [
        {
          name: 'grpc-bootstrap-init',
          image: 'busybox:1.28',
          volumeMounts: [mount],
          env: [
            fieldRef('INSTANCE_IP', 'status.podIP'),
            fieldRef('POD_NAME', 'metadata.name'),
            fieldRef('POD_NAMESPACE', 'metadata.namespace'),
            { name: 'ISTIO_NAMESPACE', value: `${ctx.config.istioNamespace}\n` },
          ],
          command: ['sh', '-c', WRITE_BOOTSTRAP],
        },
      ],
      containers: ctx.appContainers.map((c) => ({
        name: c.name as string,
        env: [
          { name: 'GRPC_XDS_BOOTSTRAP', value: '/var/lib/grpc/data/bootstrap.json' },
          { name: 'GRPC_GO_LOG_VERBOSITY_LEVEL', value: '99' },
          { name: 'GRPC_GO_LOG_SEVERITY_LEVEL', value: 'info' },
        ],
        volumeMounts: [{ ...mount }],
      })),
      volumes: [{ name: VOLUME, emptyDir: {} }],
    },
  };
}
