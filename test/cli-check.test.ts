// `sidecar-injector check`: per pod template, whether this revision's webhook would inject it in a namespace with
// the given labels, the decision's steps, and which revision would when another one would.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorLine, FIXTURES, ISTIO_INJECT_DATA, REALWORLD, runCli } from './helpers/cli.js';

interface Explained {
  header: string;
  steps: string[];
  rest: string[];
}

/** The output cut into one block per pod: its header line, its numbered steps, anything after them. */
function explained(stdout: string): Explained[] {
  const blocks = stdout.trimEnd().split('\n\n').slice(1);
  return blocks.map((block) => {
    const [header = '', ...lines] = block.split('\n');
    return {
      header,
      steps: lines.filter((line) => /^ {2}\d+\. /.test(line)).map((line) => line.replace(/^ {2}\d+\. /, '')),
      rest: lines.filter((line) => !/^ {2}\d+\. /.test(line)),
    };
  });
}

const helloworld = join(REALWORLD, 'helloworld.yaml');
const INJECTION_ENABLED = 'istio-injection=enabled';

/** The explained pods of `check -f path --namespace-labels labels`. */
const check = async (path: string, labels = INJECTION_ENABLED) =>
  explained((await runCli('check', '-f', path, '--namespace-labels', labels)).stdout);

function manifest(yaml: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'check-')), 'manifest.yaml');
  writeFileSync(path, yaml);
  return path;
}

describe('check', () => {
  it('names the other revision for a namespace labelled istio.io/rev=canary when running the default revision', async () => {
    const result = await runCli('check', '-f', helloworld, '--namespace-labels', 'istio.io/rev=canary');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout.split('\n')[0]).toBe('As revision default, in a namespace labelled istio.io/rev=canary:');
    const pods = explained(result.stdout);
    expect(pods.map((pod) => pod.header)).toEqual([
      'Deployment/helloworld-v1 in namespace default: revision default would not inject it; revision canary would (other_revision)',
      'Deployment/helloworld-v2 in namespace default: revision default would not inject it; revision canary would (other_revision)',
    ]);
    for (const pod of pods) {
      expect(pod.steps[0]).toBe('spec.hostNetwork is not set');
      expect(pod.steps.at(-1)).toContain('namespace label istio.io/rev=canary');
      expect(pod.steps.at(-1)).toMatch(/^skip: .*revision canary would inject it$/);
      expect(pod.rest).toEqual([]);
    }
  });

  it('says the canary revision injects the same pods, step by step', async () => {
    const result = await runCli('check', '-f', helloworld, '--namespace-labels', 'istio.io/rev=canary', '--revision', 'canary');
    const [first] = explained(result.stdout);
    expect(first?.header).toBe('Deployment/helloworld-v1 in namespace default: revision canary would inject it (namespace_revision)');
    expect(first?.steps.at(-1)).toBe('inject: the namespace label istio.io/rev=canary selects revision canary');
  });

  it('lets istio-injection=enabled win over istio.io/rev: the default revision injects', async () => {
    const [first] = await check(helloworld, 'istio-injection=enabled,istio.io/rev=canary');
    expect(first?.header).toBe(
      'Deployment/helloworld-v1 in namespace default: revision default would inject it (namespace_injection_enabled)',
    );
    expect(first?.steps.some((step) => step.includes('wins over istio.io/rev=canary'))).toBe(true);
  });

  it('explains an opted-out pod and a namespace without labels', async () => {
    const optedOut = await check(join(ISTIO_INJECT_DATA, 'hello-ignore.yaml'));
    expect(optedOut[0]?.header).toBe('Deployment/hello in namespace default: revision default would not inject it (pod_opted_out)');
    expect(optedOut[0]?.steps.at(-1)).toBe('skip: the pod annotation sidecar.istio.io/inject is "false"');

    const unlabelled = await runCli('check', '-f', helloworld);
    expect(unlabelled.stdout.split('\n')[0]).toBe('As revision default, in a namespace without labels:');
    expect(explained(unlabelled.stdout)[0]?.header).toMatch(/would not inject it \(not_opted_in\)$/);
  });

  it("uses the document's namespace: the Deployment in shop, the others in default; kube-system is never injected", async () => {
    const mixed = await check(join(FIXTURES, 'mixed.yaml'));
    expect(mixed.map((pod) => pod.header)).toEqual([
      'Deployment/web in namespace shop: revision default would inject it (namespace_injection_enabled)',
    ]);

    const system = await check(
      manifest('kind: Pod\nmetadata: {name: dns, namespace: kube-system}\nspec: {containers: [{name: dns, image: dns:1}]}\n'),
    );
    expect(system[0]?.header).toBe('Pod/dns in namespace kube-system: revision default would not inject it (ignored_namespace)');
  });

  it('says when the webhook would refuse the pod, and why', async () => {
    const [daemonSet, deployment] = await check(join(FIXTURES, 'refused.yaml'));
    expect(daemonSet?.header).toMatch(/^DaemonSet\/node-agent in namespace default: .*\(host_network\)$/);
    expect(deployment?.header).toMatch(/^Deployment\/api in namespace default: revision default would refuse it /);
    expect(deployment?.header).toContain('traffic.sidecar.istio.io/excludeInboundPorts: invalid value "80,http"');
  });

  it('prints the warning of an invalid sidecar.istio.io/inject value', async () => {
    const [pod] = await check(
      manifest('kind: Pod\nmetadata: {name: p, labels: {sidecar.istio.io/inject: "yes"}}\nspec: {containers: [{name: c, image: c:1}]}\n'),
    );
    expect(pod?.rest).toEqual([expect.stringMatching(/^ {2}warning: invalid value for sidecar\.istio\.io\/inject: "yes"/)]);
  });

  it('refuses namespace labels that are not key=value pairs', async () => {
    for (const labels of ['istio-injection', 'a=1,,b=2', '=enabled', 'a=1,a=2']) {
      expect(errorLine(await runCli('check', '-f', helloworld, '--namespace-labels', labels))).toMatch(
        /^sidecar-injector check: --namespace-labels: /,
      );
    }
  });
});
