// The Dockerfile, linted with dockerfilelint (no Docker engine runs here, so the image is never built in CI), plus
// the properties the chart relies on that no linter knows: Node 24, production dependencies only, a numeric
// non-root user, no shell at run time, and /app as the working directory where the uninstall hook finds
// node_modules.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { run as lintDockerfile } from 'dockerfilelint';
import { describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const DOCKERFILE = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');

interface Instruction {
  keyword: string;
  argument: string;
}

/** Instructions in order, continuation lines joined, comments dropped. */
function instructions(dockerfile: string): Instruction[] {
  return dockerfile
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), argument: rest.join(' ') };
    });
}

/** The instructions of the last stage: what the image runs with. */
function finalStage(dockerfile: string): Instruction[] {
  const all = instructions(dockerfile);
  const lastFrom = all.map((i) => i.keyword).lastIndexOf('FROM');
  return all.slice(lastFrom);
}

const last = (stage: Instruction[], keyword: string) => stage.filter((i) => i.keyword === keyword).at(-1)?.argument;

describe('the Dockerfile', () => {
  it('has no dockerfilelint findings', () => {
    expect(lintDockerfile(REPO, DOCKERFILE)).toEqual([]);
  });

  it('is linted by a linter that does report problems', () => {
    const findings = lintDockerfile(REPO, 'FROM node\nRUN apt-get update && apt-get install curl\n');
    expect(findings.map((f) => f.rule)).toEqual(expect.arrayContaining(['apt-get_missing_param']));
  });

  it('builds in one stage and runs from Node 24 in another', () => {
    const bases = instructions(DOCKERFILE).filter((i) => i.keyword === 'FROM').map((i) => i.argument);
    expect(bases.length).toBeGreaterThanOrEqual(2);
    for (const base of bases) expect(base).toMatch(/^node:24[.-]/);
  });

  it('ships production dependencies only', () => {
    const runs = instructions(DOCKERFILE).filter((i) => i.keyword === 'RUN');
    expect(runs.some((i) => /npm (prune|ci) .*--omit=dev/.test(i.argument))).toBe(true);
  });

  it('runs as a numeric non-root user, without a shell, from /app', () => {
    const stage = finalStage(DOCKERFILE);
    expect(last(stage, 'USER')).toMatch(/^[1-9][0-9]*(:[0-9]+)?$/);
    // The exec form: the kernel starts node directly, no /bin/sh in between.
    expect(JSON.parse(last(stage, 'ENTRYPOINT') ?? 'null')).toEqual(['node', '/app/dist/cli/main.js']);
    expect(last(stage, 'WORKDIR')).toBe('/app');
  });

  it('exposes the port the chart configures the server to listen on', () => {
    const values = readFileSync(new URL('../charts/sidecar-injector/values.yaml', import.meta.url), 'utf8');
    const chartPort = /^port: ([0-9]+)$/m.exec(values)?.[1];
    expect(last(finalStage(DOCKERFILE), 'EXPOSE')).toBe(chartPort);
  });
});
