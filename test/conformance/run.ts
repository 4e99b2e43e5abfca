// The conformance harness: `npm run conformance -- <corpus dir>` injects every input of an Istio-style corpus
// with the settings its CASES.md gives (cases.ts), applies our patch, and compares the result with Istio's golden
// semantically (compare.ts). One line per case, then "N same, M differ, K skipped". The corpus is read from the
// path given at run time; nothing of it is copied into this project.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import jsonpatch from 'fast-json-patch';
import { parseAllDocuments } from 'yaml';
import { resolveConfig } from '../../src/config/schema.js';
import { reviewPod } from '../../src/core/review-pod.js';
import { parseManifests } from '../../src/manifests/documents.js';
import { findPodTemplates } from '../../src/manifests/pod-templates.js';
import { CASES, type CaseSettings, REFUSALS, WEBHOOK_NAMESPACE } from './cases.js';
import { differences, normalise } from './compare.js';

export interface CaseResult {
  name: string;
  result: 'same' | 'differs' | 'skipped';
  detail?: string;
}

const BASE = { images: { hub: 'registry.istio.io/testing', tag: 'latest' } };

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      typeof v === 'object' && v !== null && !Array.isArray(v) && typeof b === 'object' && b !== null && !Array.isArray(b)
        ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Injects every pod template of a manifest as the case says; returns the documents, or the refusal message. */
function injectManifest(text: string, source: string, settings: CaseSettings): unknown[] | string {
  const config = resolveConfig(deepMerge(BASE, settings.config ?? {}));
  const manifests = parseManifests(text, source);
  const out: unknown[] = [];
  for (const document of manifests.documents) {
    for (const template of findPodTemplates(document.value, source)) {
      const webhook = settings.mode === 'webhook';
      const review = reviewPod({
        pod: template.pod,
        namespace: webhook ? WEBHOOK_NAMESPACE.name : template.namespace || 'default',
        namespaceLabels: webhook ? { 'istio-injection': 'enabled' } : undefined,
        namespaceAnnotations: webhook ? WEBHOOK_NAMESPACE.annotations : undefined,
        config,
        manual: !webhook,
        workload: template.workload,
      });
      if (review.outcome === 'refused') return review.error.message;
      if (review.outcome === 'injected') {
        jsonpatch.applyPatch(template.pod, review.patch as jsonpatch.Operation[], true, true);
      }
    }
    out.push(document.value);
  }
  return out;
}

export function runConformance(dir: string): CaseResult[] {
  const files = readdirSync(dir).sort();
  const results: CaseResult[] = [];
  for (const golden of files.filter((f) => f.endsWith('.injected'))) {
    const settings = CASES[golden] ?? {};
    if (settings.skip) {
      results.push({ name: golden, result: 'skipped', detail: settings.skip });
      continue;
    }
    const input = settings.input ?? golden.replace(/\.injected$/, '');
    if (!existsSync(join(dir, input))) {
      results.push({ name: golden, result: 'skipped', detail: `input ${input} not found` });
      continue;
    }
    const ours = injectManifest(readFileSync(join(dir, input), 'utf8'), input, settings);
    if (typeof ours === 'string') {
      results.push({ name: golden, result: 'differs', detail: `refused: ${ours}` });
      continue;
    }
    const expected = parseAllDocuments(readFileSync(join(dir, golden), 'utf8'))
      .map((d) => d.toJS() as unknown)
      .filter((d) => d !== null);
    const diffs = differences(normalise(ours), normalise(expected));
    results.push(diffs.length ? { name: golden, result: 'differs', detail: diffs.join('; ') } : { name: golden, result: 'same' });
  }
  for (const [input, needle] of Object.entries(REFUSALS)) {
    if (!existsSync(join(dir, input))) continue;
    const ours = injectManifest(readFileSync(join(dir, input), 'utf8'), input, {});
    const refused = typeof ours === 'string' && ours.toLowerCase().includes(needle);
    results.push(
      refused
        ? { name: input, result: 'same', detail: 'refused as Istio does' }
        : { name: input, result: 'differs', detail: typeof ours === 'string' ? `refused, but not naming ${needle}: ${ours}` : 'not refused' },
    );
  }
  return results;
}

export function summary(results: CaseResult[]): string {
  const count = (r: CaseResult['result']) => results.filter((x) => x.result === r).length;
  return `${count('same')} same, ${count('differs')} differ, ${count('skipped')} skipped`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2];
  if (!dir || !existsSync(dir)) {
    process.stderr.write('usage: npm run conformance -- <corpus dir> (e.g. ../shared/reference/istio-testdata/inject)\n');
    process.exit(2);
  }
  const results = runConformance(dir);
  for (const r of results) process.stdout.write(`${r.result.padEnd(8)} ${r.name}${r.detail ? `: ${r.detail}` : ''}\n`);
  process.stdout.write(`${summary(results)}\n`);
}
