// Mistakes on the command line and unreadable input: exit code 2, exactly one line on stderr that says what is
// wrong, nothing on stdout, never a stack trace. In-process for the cases, and through the real bin for the
// process-level contract (the exit code the shell sees, nothing else printed by Node).

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorLine, FIXTURES, runCli, spawnCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'cli-usage-'));
const file = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
const good = join(FIXTURES, 'mixed.yaml');
const missing = join(dir, 'missing.yaml');

const CASES: [what: string, argv: string[], line: string | RegExp][] = [
  ['an unknown flag', ['inject', '-f', good, '--bogus'], /^sidecar-injector inject: .*unknown flag --bogus$/],
  ['a flag without its value', ['inject', '-f'], /^sidecar-injector inject: .*flag --filename needs a value$/],
  ['no -f', ['inject'], 'sidecar-injector inject: -f FILE is required (- reads standard input)'],
  ['a stray argument', ['inject', '-f', good, 'app.yaml'], 'sidecar-injector inject: unexpected argument "app.yaml"'],
  ['a missing file', ['inject', '-f', missing], `sidecar-injector inject: cannot read ${missing}: ENOENT`],
  ['a directory', ['inject', '-f', dir], `sidecar-injector inject: cannot read ${dir}: EISDIR`],
  [
    'broken YAML, with its line in the file',
    ['inject', '-f', file('broken.yaml', 'kind: Service\n---\nkind: Deployment\nspec:\n  template: [unclosed\n')],
    /^sidecar-injector inject: .*broken\.yaml: line 5: Flow sequence .+/,
  ],
  [
    'a document separator kubectl would refuse',
    ['inject', '-f', file('separator.yaml', 'kind: Service\n--- kind: Deployment\n')],
    /^sidecar-injector inject: .*separator\.yaml: line 2: invalid document separator "--- kind: Deployment"/,
  ],
  [
    'broken JSON',
    ['inject', '-f', file('broken.json', '{"kind": "Pod",')],
    /^sidecar-injector inject: .*broken\.json is not valid JSON: /,
  ],
  [
    'a Deployment without a pod template',
    ['inject', '-f', file('no-template.yaml', 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n')],
    /^sidecar-injector inject: .*no-template\.yaml: Deployment\/web: spec\.template must be an object$/,
  ],
  [
    'a missing config file',
    ['inject', '-f', good, '--config', missing],
    `sidecar-injector inject: invalid config: cannot read ${missing}: ENOENT`,
  ],
  [
    'an invalid revision',
    ['inject', '-f', good, '--revision', 'Canary_1'],
    /^sidecar-injector inject: invalid config: revision: expected a revision name/,
  ],
  [
    'an unwritable -o',
    ['inject', '-f', good, '-o', join(dir, 'no', 'such', 'dir', 'out.yaml')],
    /^sidecar-injector inject: cannot write .*out\.yaml: ENOENT$/,
  ],
  [
    'check without -f',
    ['check', '--namespace-labels', 'istio-injection=enabled'],
    'sidecar-injector check: -f FILE is required (- reads standard input)',
  ],
  ['check on a missing file', ['check', '-f', missing], `sidecar-injector check: cannot read ${missing}: ENOENT`],
  ['certs without --out', ['certs', '--dns', 'localhost'], 'sidecar-injector certs: --out DIR is required'],
  ['an unknown command', ['injcet', '-f', good], /^sidecar-injector: unknown command "injcet"/],
];

describe('usage errors', () => {
  it.each(CASES)('%s: exit 2 and one line on stderr', async (_what, argv, expected) => {
    const line = errorLine(await runCli(...argv));
    if (typeof expected === 'string') expect(line).toBe(expected);
    else expect(line).toMatch(expected);
  });
});

describe('usage errors from the real command', () => {
  it('exits 2 with one line and no stack trace for a missing file', async () => {
    const line = errorLine(await spawnCli(['inject', '-f', missing]));
    expect(line).toBe(`sidecar-injector inject: cannot read ${missing}: ENOENT`);
  });

  it('exits 2 with one line for an unknown flag', async () => {
    expect(errorLine(await spawnCli(['check', '--namespace', 'x']))).toMatch(/^sidecar-injector check: .*unknown flag --namespace$/);
  });

  it('exits 2 with one line for an annotation Istio refuses, with nothing on stdout', async () => {
    expect(errorLine(await spawnCli(['inject', '-f', join(FIXTURES, 'refused.yaml')]))).toMatch(
      /^sidecar-injector inject: .*refused\.yaml: Deployment\/api: invalid pod annotations: /,
    );
  });
});
