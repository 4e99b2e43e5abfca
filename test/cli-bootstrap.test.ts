// `sidecar-injector bootstrap -f pod.yaml [--revision NAME] [--config FILE]`: the pod's Envoy bootstrap as JSON,
// checked against Envoy's schema first; anything wrong ends as one InjectorError line (exit code 2 in main).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { loadBootstrapValidator } from '../src/bootstrap-validation/load.js';
import { bootstrapCommand } from '../src/cli/bootstrap.js';
import { InjectorError } from '../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'cli-bootstrap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const POD = `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  containers:
  - name: web
    image: nginx
    ports: [{containerPort: 80, name: http}]
`;

/** Runs the command and returns what it printed. */
async function run(argv: string[]): Promise<string> {
  let printed = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    printed += String(chunk);
    return true;
  });
  await bootstrapCommand(argv);
  return printed;
}

/** The InjectorError the command fails with. */
async function failure(argv: string[]): Promise<InjectorError> {
  const error = await run(argv).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InjectorError);
  expect((error as Error).message).not.toContain('\n');
  return error as InjectorError;
}

const xdsAddress = (bootstrap: any) =>
  bootstrap.static_resources.clusters.find((c: any) => c.name === 'xds-grpc').load_assignment.endpoints[0].lb_endpoints[0].endpoint.address
    .socket_address;

describe('sidecar-injector bootstrap', () => {
  it('prints a bootstrap whose xds-grpc cluster points at istiod-canary for revision canary, and which passes the schema check', async () => {
    const printed = await run(['-f', file('pod.yaml', POD), '--revision', 'canary']);
    const bootstrap = JSON.parse(printed);
    expect(xdsAddress(bootstrap)).toEqual({ address: 'istiod-canary.istio-system.svc', port_value: 15012 });
    expect(bootstrap.node.id).toBe('sidecar~$(INSTANCE_IP)~$(POD_NAME).shop~shop.svc.cluster.local');
    expect(bootstrap.node.cluster).toBe('web.shop');
    expect(loadBootstrapValidator().validate(bootstrap)).toEqual([]);
    expect(printed.endsWith('}\n')).toBe(true);
  });

  it('points at istiod for the default revision', async () => {
    expect(xdsAddress(JSON.parse(await run(['-f', file('pod.yaml', POD)])))).toEqual({ address: 'istiod.istio-system.svc', port_value: 15012 });
  });

  it('renders the pod template of a Deployment, owned by the Deployment', async () => {
    const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews}}
  template:
    metadata: {labels: {app: reviews}}
    spec:
      containers: [{name: reviews, image: reviews:1}]
`;
    const { node } = JSON.parse(await run(['-f', file('deployment.yaml', deployment)]));
    expect(node.metadata.OWNER).toBe('kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/reviews');
    expect(node.metadata.WORKLOAD_NAME).toBe('reviews');
  });

  it('takes the ProxyConfig of the --config file', async () => {
    const config = file('config.yaml', 'proxyConfig:\n  controlPlaneAuthPolicy: NONE\n  discoveryAddress: istiod.istio-system.svc:15010\n');
    const bootstrap = JSON.parse(await run(['-f', file('pod.yaml', POD), '--config', config]));
    expect(xdsAddress(bootstrap).port_value).toBe(15010);
  });

  it('fails with the path Envoy would refuse when an annotation renders an invalid bootstrap', async () => {
    const pod = POD.replace(
      'labels: {app: web}',
      'labels: {app: web}\n  annotations:\n    proxy.istio.io/config: "tracing: {zipkin: {address: zipkin:70000}}"',
    );
    const error = await failure(['-f', file('bad-port.yaml', pod)]);
    expect(error.code).toBe('SI_ERR_INVALID_BOOTSTRAP');
    expect(error.message).toMatch(/socket_address\.port_value: 70000 is out of range: must be <= 65535/);
  });

  it('fails on an annotation it cannot render, naming the annotation', async () => {
    const pod = POD.replace('labels: {app: web}', "labels: {app: web}\n  annotations:\n    sidecar.istio.io/statsInclusionPrefixes: 'http.{pod_ip}_'");
    const error = await failure(['-f', file('pod-ip.yaml', pod)]);
    expect(error.code).toBe('SI_ERR_INVALID_ANNOTATION');
    expect(error.message).toContain('sidecar.istio.io/statsInclusionPrefixes');
  });

  it('needs -f', async () => {
    expect((await failure([])).code).toBe('SI_ERR_USAGE');
  });

  it('refuses a flag it does not know', async () => {
    expect((await failure(['-f', file('pod.yaml', POD), '--namespace', 'x'])).message).toContain('unknown flag --namespace');
  });

  it('needs exactly one pod in the file', async () => {
    const error = await failure(['-f', file('two.yaml', `${POD}---\n${POD}`)]);
    expect(error.code).toBe('SI_ERR_INPUT');
    expect(error.message).toContain('found 2');
  });

  it('reports a file it cannot read', async () => {
    expect((await failure(['-f', join(dir, 'missing.yaml')])).code).toBe('SI_ERR_INPUT');
  });
});
