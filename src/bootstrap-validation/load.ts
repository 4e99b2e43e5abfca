// Loading Envoy's API from the .proto files that the npm package @grpc/grpc-js-xds ships, once per process: the
// only I/O of bootstrap validation. The checker it returns is pure and cheap, so admission can run it per pod.
//
// The package ships a curated subset of Envoy's API (plus xds/udpa, googleapis and protoc-gen-validate). We load
// every v3 file whose imports it also ships, which covers the bootstrap and every extension an `@type` in it may
// name; the few files left out import APIs it lacks (OpenCensus, OpenTelemetry, Prometheus client).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import type { BootstrapValidation } from '../core/templates/template.js';
import { InvalidBootstrapError } from '../errors.js';
import { checkProtoJson, ProtoJsonSchema, type SchemaProblem } from './proto-json.js';

const BOOTSTRAP_TYPE = 'envoy.config.bootstrap.v3.Bootstrap';

export interface BootstrapValidator {
  /** Every problem Envoy's schema finds in the bootstrap, each naming its JSON path; empty when it would load. */
  validate(bootstrap: unknown): SchemaProblem[];
  /** Throws InvalidBootstrapError listing every problem. */
  assertValid(bootstrap: unknown): void;
}

const require = createRequire(import.meta.url);
const IMPORT = /^import\s+(?:public\s+|weak\s+)?"([^"]+)";/gm;

function includeDirs(): { api: string[]; all: string[] } {
  const deps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  const api = [join(deps, 'envoy-api'), join(deps, 'xds')];
  // google/protobuf/descriptor.proto, which the option extensions import, comes with protobufjs itself.
  const protobufjsDir = dirname(require.resolve('protobufjs/package.json'));
  return { api, all: [...api, join(deps, 'googleapis'), join(deps, 'protoc-gen-validate'), protobufjsDir] };
}

/** The v3 API files that load completely: every import, transitively, is shipped or bundled with protobufjs. */
function loadableFiles(api: string[], locate: (file: string) => string | undefined): string[] {
  const bundled = new Set(Object.keys(protobuf.common).map((name) => (name.includes('/') ? name : `google/protobuf/${name}.proto`)));
  const verdicts = new Map<string, boolean>();
  const loadable = (file: string): boolean => {
    const known = verdicts.get(file);
    if (known !== undefined) return known;
    if (bundled.has(file)) return true;
    const found = locate(file);
    // Assume success while visiting, so that import cycles terminate.
    verdicts.set(file, found !== undefined);
    if (found === undefined) return false;
    const imports = [...readFileSync(found, 'utf8').matchAll(IMPORT)].map((m) => m[1] as string);
    const ok = imports.every(loadable);
    verdicts.set(file, ok);
    return ok;
  };
  const files: string[] = [];
  for (const dir of api) {
    for (const entry of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
      const file = entry.split('\\').join('/');
      if (!file.endsWith('.proto')) continue;
      if (!/\/v3\/|^udpa\/type\/|^xds\/type\//.test(file)) continue;
      if (loadable(file)) files.push(file);
    }
  }
  return files;
}

function loadSchema(): ProtoJsonSchema {
  const dirs = includeDirs();
  const locate = (file: string) => dirs.all.map((dir) => join(dir, file)).find((path) => existsSync(path));
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => locate(target) ?? target;
  // keepCase: fields keep their .proto names, which is what Envoy's docs and Istio's template use.
  root.loadSync(loadableFiles(dirs.api, locate), { keepCase: true });
  root.resolveAll();
  return new ProtoJsonSchema(root);
}

let validator: BootstrapValidator | undefined;

/** The validator, built on first use (about a quarter of a second) and shared after that. */
export function loadBootstrapValidator(): BootstrapValidator {
  if (validator) return validator;
  const schema = loadSchema();
  const validate = (bootstrap: unknown) => checkProtoJson(schema, BOOTSTRAP_TYPE, bootstrap);
  validator = {
    validate,
    assertValid(bootstrap) {
      const problems = validate(bootstrap);
      if (problems.length > 0) throw new InvalidBootstrapError(problems.map((p) => `${p.path}: ${p.message}`));
    },
  };
  return validator;
}

/**
 * The check as the core takes it (problems as "path: message"), loading the schema on the first call: only pods
 * that ask for the envoy template pay for it.
 */
export const bootstrapProblems: BootstrapValidation = (bootstrap) =>
  loadBootstrapValidator()
    .validate(bootstrap)
    .map((p) => `${p.path}: ${p.message}`);
