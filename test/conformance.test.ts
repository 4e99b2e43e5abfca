// Istio's own injection corpus, run through the conformance harness (npm run conformance): at least 95% of its
// cases must come out the same as istiod's goldens, and every case that does not is one docs/compatibility.md
// explains. The corpus is read from the reference folder beside this repository at run time.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runConformance } from './conformance/run.js';
import { ISTIO_INJECT_CORPUS } from './helpers/reference.js';

const CORPUS = ISTIO_INJECT_CORPUS;
const COMPATIBILITY = fileURLToPath(new URL('../docs/compatibility.md', import.meta.url));

describe.skipIf(!existsSync(CORPUS))("Istio's injection corpus", () => {
  const results = runConformance(CORPUS);

  it('comes out the same as istiod for at least 95% of its cases', () => {
    const same = results.filter((r) => r.result === 'same').length;
    expect(results.length).toBeGreaterThan(100);
    expect(same / results.length).toBeGreaterThanOrEqual(0.95);
  });

  it('has every case that differs or is skipped explained in docs/compatibility.md', () => {
    const doc = readFileSync(COMPATIBILITY, 'utf8');
    const unexplained = results.filter((r) => r.result !== 'same' && !doc.includes(`\`${r.name}\``)).map((r) => r.name);
    expect(unexplained).toEqual([]);
  });

  it('refuses every bad-annotation input with a message naming the annotation', () => {
    const refusals = results.filter((r) => r.name.startsWith('traffic-annotations-bad-'));
    expect(refusals).toHaveLength(5);
    expect(refusals.every((r) => r.result === 'same')).toBe(true);
  });
});
