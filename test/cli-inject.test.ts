// `sidecar-injector inject`, manual injection as istioctl kube-inject does it, on Istio's own kube-inject inputs,
// on real applications' manifests and on fixtures that YAML 1.1 readers read differently from YAML 1.2 ones.

import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { errorLine, FIXTURES, ISTIO_INJECT_DATA, REALWORLD, runCli, spawnCli } from './helpers/cli.js';

type Obj = Record<string, any>;

const corpus = (name: string) => join(ISTIO_INJECT_DATA, name);
const fixture = (name: string) => join(FIXTURES, name);

/** Every document of the output, read with YAML 1.1 rules as Go's readers behind kubectl do. */
const documentsOf = (text: string): Obj[] =>
  parseAllDocuments(text, { version: '1.1' })
    .map((document) => document.toJS() as Obj | null)
    .filter((value): value is Obj => value !== null);

const containerNames = (pod: Obj, field: 'containers' | 'initContainers') =>
  ((pod.spec[field] ?? []) as Obj[]).map((container) => container.name as string);

const proxyOf = (pod: Obj): Obj =>
  [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((container: Obj) => container.name === 'istio-proxy');

const envOf = (container: Obj, name: string): string | undefined =>
  (container.env as Obj[]).find((env) => env.name === name)?.value;

/** The golden file Istio's own tests expect kube-inject to produce, read the same way. */
const golden = (name: string): Obj[] => documentsOf(readFileSync(corpus(`${name}.injected`), 'utf8'));

/** kubectl's rule for splitting documents: the text between `---` lines. */
const chunksOf = (text: string) => text.split(/^---[ \t]*(?:#.*)?\r?\n/m).filter((chunk) => chunk.trim() !== '');

describe('inject on Istio kube-inject inputs', () => {
  it('injects hello.yaml as Istio does: istio-init and istio-proxy, the same status annotation and owner', async () => {
    const result = await runCli('inject', '-f', corpus('hello.yaml'));
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const [deployment] = documentsOf(result.stdout);
    const [expected] = golden('hello.yaml');
    const pod = deployment?.spec.template;
    const goldenPod = expected?.spec.template;
    // Native sidecars, the current Istio default: both injected containers are init containers.
    expect(containerNames(pod, 'initContainers')).toEqual(['istio-init', 'istio-proxy']);
    expect(containerNames(pod, 'containers')).toEqual(['hello']);
    expect(pod.spec.initContainers[0].args).toEqual(goldenPod.spec.initContainers[0].args);
    expect(pod.metadata.annotations['sidecar.istio.io/status']).toBe(goldenPod.metadata.annotations['sidecar.istio.io/status']);
    expect(envOf(proxyOf(pod), 'ISTIO_META_OWNER')).toBe(envOf(proxyOf(goldenPod), 'ISTIO_META_OWNER'));
    expect(result.stdout.endsWith('---\n')).toBe(true);
  });

  it('takes the owner namespace from the workload (hello-namespace: namespaces/test)', async () => {
    const result = await runCli('inject', '-f', corpus('hello-namespace.yaml'));
    const pod = documentsOf(result.stdout)[0]?.spec.template;
    expect(envOf(proxyOf(pod), 'ISTIO_META_OWNER')).toBe('kubernetes://apis/apps/v1/namespaces/test/deployments/hello');
  });

  it('writes a Service Istio leaves alone exactly as istioctl does (golden hello-service.yaml.injected)', async () => {
    const result = await runCli('inject', '-f', corpus('hello-service.yaml'));
    expect(result).toEqual({ code: 0, stdout: readFileSync(corpus('hello-service.yaml.injected'), 'utf8'), stderr: '' });
  });

  it("finds a CronJob's pod template under spec.jobTemplate.spec.template and names the CronJob as owner", async () => {
    const result = await runCli('inject', '-f', corpus('cronjob.yaml'));
    expect(result.code).toBe(0);
    const [cronJob] = documentsOf(result.stdout);
    const pod = cronJob?.spec.jobTemplate.spec.template;
    expect(containerNames(pod, 'initContainers')).toEqual(['istio-init', 'istio-proxy']);
    expect(containerNames(pod, 'containers')).toEqual(['hello']);
    expect(envOf(proxyOf(pod), 'ISTIO_META_OWNER')).toBe('kubernetes://apis/batch/v1/namespaces/default/cronjobs/hellocron');
    // The pods carry the labels; istioctl puts them on spec.jobTemplate.metadata, which pods never see.
    expect(pod.metadata.labels['security.istio.io/tlsMode']).toBe('istio');
    expect(cronJob?.spec.jobTemplate.metadata).toBeUndefined();
  });

  it('injects every Deployment of a List (list.yaml)', async () => {
    const result = await runCli('inject', '-f', corpus('list.yaml'));
    const [list] = documentsOf(result.stdout);
    expect(list?.kind).toBe('List');
    expect(list?.items.map((item: Obj) => containerNames(item.spec.template, 'initContainers'))).toEqual([
      ['istio-init', 'istio-proxy'],
      ['istio-init', 'istio-proxy'],
    ]);
  });

  it('injects a DeploymentConfig inside a List and keeps the Service item as it was (deploymentconfig-multi.yaml)', async () => {
    const input = documentsOf(readFileSync(corpus('deploymentconfig-multi.yaml'), 'utf8'))[0];
    const result = await runCli('inject', '-f', corpus('deploymentconfig-multi.yaml'));
    const [list] = documentsOf(result.stdout);
    expect(list?.items[0]).toEqual(input?.items[0]);
    const pod = list?.items[1].spec.template;
    expect(containerNames(pod, 'initContainers')).toEqual(['istio-init', 'istio-proxy']);
    expect(envOf(proxyOf(pod), 'ISTIO_META_OWNER')).toBe(
      'kubernetes://apis/apps.openshift.io/v1/namespaces/default/deploymentconfigs/hello',
    );
  });

  it('skips a host-network Deployment with istioctl\'s warning and writes it back unchanged', async () => {
    const input = readFileSync(corpus('hello-host-network-with-ns.yaml'), 'utf8');
    const result = await runCli('inject', '-f', corpus('hello-host-network-with-ns.yaml'));
    expect(result).toEqual({
      code: 0,
      stdout: `${input}---\n`,
      stderr: '===> Skipping injection because Deployment "sample/hello-host-network" has host networking enabled\n',
    });
  });

  it('skips a Deployment whose template opts out (hello-ignore.yaml) and writes it back unchanged', async () => {
    const input = readFileSync(corpus('hello-ignore.yaml'), 'utf8');
    const result = await runCli('inject', '-f', corpus('hello-ignore.yaml'));
    expect(result).toEqual({
      code: 0,
      stdout: `${input.endsWith('\n') ? input : `${input}\n`}---\n`,
      stderr: '===> Skipping injection because Deployment "hello" has sidecar injection disabled\n',
    });
  });

  it('uses the revision of --revision: canary discovery address, status and istio.io/rev', async () => {
    const result = await runCli('inject', '-f', corpus('hello.yaml'), '--revision', 'canary');
    const pod = documentsOf(result.stdout)[0]?.spec.template;
    expect(envOf(proxyOf(pod), 'CA_ADDR')).toBe('istiod-canary.istio-system.svc:15012');
    expect(JSON.parse(pod.metadata.annotations['sidecar.istio.io/status']).revision).toBe('canary');
    expect(pod.metadata.annotations['istio.io/rev']).toBe('canary');
  });
});

describe('inject on a multi-document file (fixtures/cli/mixed.yaml)', () => {
  const input = readFileSync(fixture('mixed.yaml'), 'utf8');
  const [header, service, deployment, configMap] = chunksOf(input);

  it('writes the documents it does not change byte for byte, comments included, in their order', async () => {
    const result = await runCli('inject', '-f', fixture('mixed.yaml'));
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const output = chunksOf(result.stdout);
    expect(output).toHaveLength(4);
    expect([output[0], output[1], output[3]]).toEqual([header, service, configMap]);
    expect(output[2]).not.toBe(deployment);
  });

  it('injects the Deployment in its own namespace', async () => {
    const result = await runCli('inject', '-f', fixture('mixed.yaml'));
    const pod = documentsOf(result.stdout).find((document) => document.kind === 'Deployment')?.spec.template;
    expect(containerNames(pod, 'initContainers')).toEqual(['istio-init', 'istio-proxy']);
    expect(envOf(proxyOf(pod), 'ISTIO_META_OWNER')).toBe('kubernetes://apis/apps/v1/namespaces/shop/deployments/web');
  });

  it('keeps "on", "yes", "y", "no", "0644", "10:30" and dates strings for YAML 1.1 readers', async () => {
    const result = await runCli('inject', '-f', fixture('mixed.yaml'));
    const deploymentText = chunksOf(result.stdout)[2] as string;
    for (const quoted of ['feature: "on"', 'canary: "yes"', 'short: "y"', 'legacy: "no"', 'build: "0644"', 'value: "on"']) {
      expect(deploymentText).toContain(quoted);
    }
    // Read back with every YAML 1.1 rule (booleans, octal, sexagesimal numbers, timestamps): still strings.
    const pod = parse(deploymentText, { version: '1.1' }).spec.template;
    expect(pod.metadata.labels).toMatchObject({ feature: 'on', canary: 'yes', short: 'y', legacy: 'no', build: '0644' });
    expect(pod.metadata.annotations.window).toBe('10:30');
    expect(pod.spec.containers[0].args).toEqual(['--level', 'off', '--start', '10:30', '--when', '2024-01-02']);
    // An unquoted 0644 is octal to Go: the mode the user meant survives the rewrite.
    expect(pod.spec.volumes.find((volume: Obj) => volume.name === 'config').configMap.defaultMode).toBe(0o644);
  });

  it('gives the same file when its own output is injected again', async () => {
    const first = await runCli('inject', '-f', fixture('mixed.yaml'));
    const dir = mkdtempSync(join(tmpdir(), 'inject-'));
    writeFileSync(join(dir, 'once.yaml'), first.stdout);
    const second = await runCli('inject', '-f', join(dir, 'once.yaml'));
    expect(second).toEqual(first);
  });

  it('writes to -o FILE instead of standard output', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'inject-'));
    const toStdout = await runCli('inject', '-f', fixture('mixed.yaml'));
    const toFile = await runCli('inject', '-f', fixture('mixed.yaml'), '-o', join(dir, 'out.yaml'));
    expect(toFile).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(readFileSync(join(dir, 'out.yaml'), 'utf8')).toBe(toStdout.stdout);
  });
});

describe('inject refusals', () => {
  it('stops at a refused annotation with one line naming the file, the workload and the annotation, and no output', async () => {
    // refused.yaml skips a host-network DaemonSet first: its warning must not be printed either.
    const line = errorLine(await runCli('inject', '-f', fixture('refused.yaml')));
    expect(line).toBe(
      `sidecar-injector inject: ${fixture('refused.yaml')}: Deployment/api: invalid pod annotations: ` +
        'annotation traffic.sidecar.istio.io/excludeInboundPorts: invalid value "80,http": ' +
        'excludeInboundPorts invalid: "http" is not a port (0-65535); expected a comma-separated list of ports',
    );
  });
});

describe('inject JSON', () => {
  const dir = mkdtempSync(join(tmpdir(), 'inject-json-'));
  const hello = parse(readFileSync(corpus('hello.yaml'), 'utf8'));
  const serviceText = JSON.stringify(parse(readFileSync(corpus('hello-service.yaml'), 'utf8')));
  writeFileSync(join(dir, 'hello.json'), JSON.stringify(hello));
  writeFileSync(join(dir, 'service.json'), serviceText);

  it('answers JSON with JSON', async () => {
    const result = await runCli('inject', '-f', join(dir, 'hello.json'));
    expect(result.code).toBe(0);
    const pod = JSON.parse(result.stdout).spec.template;
    expect(containerNames(pod, 'initContainers')).toEqual(['istio-init', 'istio-proxy']);
  });

  it('writes JSON it does not change byte for byte', async () => {
    expect(await runCli('inject', '-f', join(dir, 'service.json'))).toEqual({ code: 0, stdout: serviceText, stderr: '' });
  });
});

describe('inject on real applications', () => {
  // Pod templates per file: every Deployment, none opts out or uses the host network.
  const INJECTED: Record<string, number> = {
    'bookinfo.yaml': 6,
    'curl.yaml': 1,
    'helloworld.yaml': 2,
    'httpbin.yaml': 1,
    'online-boutique.yaml': 12,
  };

  it('covers every file in the folder', () => {
    expect(readdirSync(REALWORLD).filter((name) => name.endsWith('.yaml')).sort()).toEqual(Object.keys(INJECTED).sort());
  });

  it.each(Object.entries(INJECTED))('%s: injects %i pod templates, other documents byte for byte', async (name, count) => {
    const input = readFileSync(join(REALWORLD, name), 'utf8');
    const result = await runCli('inject', '-f', join(REALWORLD, name));
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const injected = documentsOf(result.stdout).filter((document) => {
      const pod = document.spec?.template;
      return pod && containerNames(pod, 'initContainers').includes('istio-proxy');
    });
    expect(injected).toHaveLength(count);
    const untouched = chunksOf(input).filter((chunk) => !/^kind: Deployment$/m.test(chunk));
    const output = chunksOf(result.stdout);
    for (const chunk of untouched) expect(output).toContain(chunk);
    expect(output).toHaveLength(chunksOf(input).length);
  });
});

describe('inject as a process', () => {
  it('reads standard input for -f - and exits 0', async () => {
    const result = await spawnCli(['inject', '-f', '-'], { stdin: readFileSync(corpus('hello.yaml'), 'utf8') });
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(containerNames(documentsOf(result.stdout)[0]?.spec.template, 'initContainers')).toEqual(['istio-init', 'istio-proxy']);
  });

  it('ends quietly when the reader of its output goes away (| head)', async () => {
    // A few MB of output, far more than a pipe holds, so the writes certainly meet the closed pipe.
    const manyDeployments = Array(300).fill(readFileSync(corpus('hello.yaml'), 'utf8')).join('\n---\n');
    const result = await spawnCli(['inject', '-f', '-'], { stdin: manyDeployments, closeStdoutEarly: true });
    expect(result).toMatchObject({ code: 0, stderr: '' });
  });
});

describe('warnings', () => {
  it('prints accepted but deprecated annotations as warnings on stderr, as kubectl shows the webhook\'s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warn-'));
    const file = join(dir, 'pod.yaml');
    writeFileSync(
      file,
      'apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    traffic.sidecar.istio.io/kubevirtInterfaces: net1\nspec:\n  containers:\n  - name: app\n    image: app\n',
    );
    const result = await runCli('inject', '-f', file);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^Warning: Pod\/p: annotation traffic.sidecar.istio.io\/kubevirtInterfaces is deprecated/m);
  });
});
