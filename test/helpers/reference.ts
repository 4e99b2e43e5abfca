// Where the shared reference material is: Istio's test corpora and real-world manifests, read at run time and never
// copied into this project. It sits beside the repository (../shared) on the machines this project is built on;
// a clone elsewhere finds it at /work/shared, or wherever SIDECAR_INJECTOR_SHARED points.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const candidates = [
  process.env.SIDECAR_INJECTOR_SHARED,
  fileURLToPath(new URL('../../../shared', import.meta.url)),
  '/work/shared',
].filter((dir): dir is string => dir !== undefined && dir !== '');

export const SHARED_DIR = candidates.find((dir) => existsSync(join(dir, 'reference'))) ?? (candidates[0] as string);
export const REFERENCE_DIR = join(SHARED_DIR, 'reference');
export const REALWORLD_DIR = join(SHARED_DIR, 'realworld');
export const ISTIO_INJECT_CORPUS = join(REFERENCE_DIR, 'istio-testdata', 'inject');
