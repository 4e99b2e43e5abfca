// The patch is targeted: operations against the exact object received, JSON-pointer escaped keys, whole arrays or
// maps only where they were absent, and a property test that any pod's patch applies and injects exactly once.

import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../src/core/json.js';
import { diff, escapePointer } from '../src/core/patch.js';
import { reviewPod } from '../src/core/review-pod.js';
import { configFor, names, podWith } from './helpers/pods.js';

const enabled = { 'istio-injection': 'enabled' };
const config = configFor('');

function patchFor(pod: JsonObject) {
  const result = reviewPod({ pod, namespace: 'team', namespaceLabels: enabled, config });
  if (result.outcome !== 'injected') throw new Error(`expected injection, got ${result.outcome}`);
  return result.patch;
}

describe('JSON pointer escaping', () => {
  it('escapes "~" before "/" so that "a~1b" and "a/b" stay different keys', () => {
    expect(escapePointer('sidecar.istio.io/status')).toBe('sidecar.istio.io~1status');
    expect(escapePointer('a~1b')).toBe('a~01b');
    expect(escapePointer('~/')).toBe('~0~1');
  });

  it('adds annotation keys with "/" one by one when the map exists', () => {
    const ops = patchFor(podWith({ app: 'x' }, { 'team.example.com/owner': 'me' }));
    const paths = ops.map((o) => o.path);
    expect(paths).toContain('/metadata/annotations/sidecar.istio.io~1status');
    expect(paths).toContain('/metadata/labels/security.istio.io~1tlsMode');
    expect(paths).not.toContain('/metadata/annotations');
  });
});

describe('targeted operations', () => {
  it('adds whole arrays and maps that were absent, and nothing touches the user container', () => {
    const pod = podWith();
    delete (pod.metadata as JsonObject).annotations;
    const ops = patchFor(pod);
    expect(ops.filter((o) => o.path.startsWith('/spec/containers'))).toEqual([]);
    expect(ops.find((o) => o.path === '/spec/initContainers')?.op).toBe('add');
    expect(ops.find((o) => o.path === '/spec/volumes')?.op).toBe('add');
    expect(ops.find((o) => o.path === '/metadata/annotations')?.op).toBe('add');
  });

  it('inserts into existing arrays at the final index of each new element', () => {
    const ops = diff('/a', ['x', 'y'], ['n0', 'x', 'n2', 'y', 'n4']);
    expect(ops).toEqual([
      { op: 'add', path: '/a/0', value: 'n0' },
      { op: 'add', path: '/a/2', value: 'n2' },
      { op: 'add', path: '/a/4', value: 'n4' },
    ]);
    const doc = { a: ['x', 'y'] };
    expect(jsonpatch.applyPatch(doc, ops as jsonpatch.Operation[], true, false).newDocument.a).toEqual(['n0', 'x', 'n2', 'y', 'n4']);
  });

  it('emits no operation for a key that already has the value, replace for one that differs, remove for one gone', () => {
    expect(diff('/m', { a: '1', b: '2', gone: 'x' }, { a: '1', b: '3', 'c/d': '4' })).toEqual([
      { op: 'remove', path: '/m/gone' },
      { op: 'replace', path: '/m/b', value: '3' },
      { op: 'add', path: '/m/c~1d', value: '4' },
    ]);
  });

  it('diffs a changed named item in place and replaces an array whose items were removed', () => {
    const app = { name: 'app', image: 'a' };
    expect(diff('/c', [app], [{ name: 'app', image: 'b' }, { name: 'new' }])).toEqual([
      { op: 'replace', path: '/c/0/image', value: 'b' },
      { op: 'add', path: '/c/1', value: { name: 'new' } },
    ]);
    expect(diff('/c', [app, { name: 'old' }], [app])).toEqual([{ op: 'replace', path: '/c', value: [app] }]);
    expect(diff('/c', [{ name: 'x', v: 1 }, app], [app, { v: 1, name: 'x' }])).toEqual([
      { op: 'replace', path: '/c', value: [app, { v: 1, name: 'x' }] },
    ]);
    expect(diff('/c', [{ name: 'x', v: 1 }], [{ v: 1, name: 'x' }])).toEqual([]);
  });

  it('creates metadata when the pod has none, and replaces a null labels map', () => {
    const noMetadata = { spec: { containers: [{ name: 'a', image: 'a' }] } } as JsonObject;
    expect(patchFor(noMetadata).some((o) => o.path === '/metadata' && o.op === 'add')).toBe(true);
    const nullLabels = podWith();
    (nullLabels.metadata as JsonObject).labels = null;
    const ops = patchFor(nullLabels);
    expect(ops.find((o) => o.path === '/metadata/labels')).toMatchObject({ op: 'replace' });
    jsonpatch.applyPatch(nullLabels, ops as jsonpatch.Operation[], true, false);
  });
});

// Arbitrary but valid pods: names, labels and annotations with any characters, optional arrays.
const key = fc.string({ minLength: 1, maxLength: 12 });
const containerArb = (prefix: string) =>
  fc.record({ name: key.map((k) => `${prefix}-${k}`), image: fc.string() }, { requiredKeys: ['name', 'image'] });
const podArb = fc.record(
  {
    metadata: fc.record(
      {
        name: fc.string(),
        labels: fc.dictionary(key, fc.string(), { maxKeys: 5 }),
        annotations: fc.dictionary(key.filter((k) => !k.includes('sidecar.istio.io')), fc.string(), { maxKeys: 5 }),
      },
      { requiredKeys: [] },
    ),
    spec: fc.record(
      {
        containers: fc.uniqueArray(containerArb('app'), { minLength: 1, maxLength: 4, selector: (c) => c.name }),
        initContainers: fc.uniqueArray(containerArb('init'), { maxLength: 3, selector: (c) => c.name }),
        volumes: fc.uniqueArray(fc.record({ name: key.map((k) => `vol-${k}`) }), { maxLength: 3, selector: (v) => v.name }),
      },
      { requiredKeys: ['containers'] },
    ),
  },
  { requiredKeys: ['spec'] },
);

describe('every patch applies (property test)', () => {
  it('for any pod: the patch applies, injects istio-proxy once, keeps user containers and is idempotent', () => {
    fc.assert(
      fc.property(podArb, (input) => {
        const pod = input as unknown as JsonObject;
        const ops = patchFor(structuredClone(pod));
        const injected = jsonpatch.applyPatch(structuredClone(pod), ops as jsonpatch.Operation[], true, false)
          .newDocument as JsonObject;
        const spec = injected.spec as { initContainers: unknown; containers: unknown };
        const all = [...names(spec.initContainers), ...names(spec.containers)];
        expect(all.filter((n) => n === 'istio-proxy')).toHaveLength(1);
        expect(names(spec.containers)).toEqual(names((pod.spec as { containers: unknown }).containers));
        const labels = (pod.metadata as JsonObject | undefined)?.labels as Record<string, string> | undefined;
        for (const [k, v] of Object.entries(labels ?? {})) {
          if (!k.startsWith('security.istio.io') && !k.startsWith('service.istio.io')) {
            expect(((injected.metadata as JsonObject).labels as Record<string, string>)[k]).toBe(v);
          }
        }
        expect(patchFor(injected)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });
});
