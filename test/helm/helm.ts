// The real helm binary against the chart. fetch-helm.sh puts helm in .cache/tools (CI runs it first; here it is run
// again, which costs nothing once fetched). helm's cache, config and data homes are a scratch folder, so neither
// a developer's repositories and plugins nor a previous run change what the tests see.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { Manifest } from './manifests.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHART = join(ROOT, 'charts/sidecar-injector');
const HELM = join(ROOT, '.cache/tools/helm');
/** Where Istio installs its control plane, and where the docs install the injector. */
export const RELEASE_NAMESPACE = 'istio-system';

function fetchHelm(): string | undefined {
  try {
    execFileSync('bash', [join(ROOT, 'test/helm/fetch-helm.sh')], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
    return undefined;
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? '').trim();
    return stderr.split('\n').at(-1) || (error as Error).message;
  }
}

const fetchProblem = fetchHelm();

export interface Release {
  name: string;
  namespace?: string;
  /** Values as a values file would hold them. */
  values?: Record<string, unknown>;
}

export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}

export class Helm {
  private readonly home = mkdtempSync(join(tmpdir(), 'helm-home-'));
  private valuesFiles = 0;

  run(args: string[]): HelmResult {
    const result = spawnSync(HELM, args, {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        HELM_CACHE_HOME: join(this.home, 'cache'),
        HELM_CONFIG_HOME: join(this.home, 'config'),
        HELM_DATA_HOME: join(this.home, 'data'),
      },
    });
    return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
  }

  /** `helm template` of a release; a failed render throws with helm's message. */
  template(release: Release): Manifest[] {
    const result = this.run(['template', ...this.releaseArgs(release)]);
    if (result.status !== 0) throw new Error(`helm template ${release.name} failed: ${result.stderr.trim()}`);
    return parseAllDocuments(result.stdout)
      .map((document) => document.toJS() as Manifest | null)
      .filter((manifest): manifest is Manifest => manifest !== null);
  }

  /** helm's error for values the chart must refuse. */
  templateError(release: Release): string {
    const result = this.run(['template', ...this.releaseArgs(release)]);
    if (result.status === 0) throw new Error(`helm template ${release.name} rendered values it should refuse`);
    return result.stderr;
  }

  lint(release: Release): HelmResult {
    return this.run(['lint', '--strict', CHART, ...this.valuesArgs(release)]);
  }

  dispose(): void {
    rmSync(this.home, { recursive: true, force: true });
  }

  private releaseArgs(release: Release): string[] {
    return [release.name, CHART, ...this.valuesArgs(release)];
  }

  private valuesArgs(release: Release): string[] {
    const args = ['--namespace', release.namespace ?? RELEASE_NAMESPACE];
    if (release.values) {
      // JSON is YAML, and a file keeps lists and nested maps exactly as written (no --set escaping).
      const file = join(this.home, `values-${++this.valuesFiles}.json`);
      writeFileSync(file, JSON.stringify(release.values));
      args.push('--values', file);
    }
    return args;
  }
}

/**
 * A suite that needs helm. When helm cannot be fetched (no registry access on a developer's machine), the suite
 * reports one skipped test that says why instead of failing; CI fetches helm before the tests, so there the
 * suite always runs.
 */
export function describeWithHelm(name: string, suite: (helm: Helm) => void): void {
  describe(name, () => {
    if (fetchProblem !== undefined) {
      it.skip(`needs helm, which could not be fetched (${fetchProblem})`, () => {});
      return;
    }
    const helm = new Helm();
    afterAll(() => helm.dispose());
    suite(helm);
  });
}
