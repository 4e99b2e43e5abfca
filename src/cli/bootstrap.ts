// `sidecar-injector bootstrap`: the Envoy bootstrap the `envoy` template gives a pod, as JSON, after the same
// check against Envoy's schema that admission runs. A manifest may hold the Pod itself or any workload that
// `inject` understands; it must hold exactly one pod, since the output is one bootstrap.

import { loadBootstrapValidator } from '../bootstrap-validation/load.js';
import { loadConfig } from '../config/load.js';
import { renderPodBootstrap } from '../core/bootstrap.js';
import { InputError, UsageError } from '../errors.js';
import { readManifests } from '../manifests/documents.js';
import { findPodTemplates } from '../manifests/pod-templates.js';
import { parseFlags } from './args.js';
import { writeStdout } from './output.js';

export async function bootstrapCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, {
    values: ['filename', 'revision', 'config'],
    aliases: { '-f': 'filename' },
  });
  if (flags.positional.length > 0) throw new UsageError(`unexpected argument "${flags.positional[0]}"`);
  const path = flags.values.get('filename');
  if (path === undefined) throw new UsageError('-f FILE is required (- reads standard input)');
  const revision = flags.values.get('revision');
  const config = loadConfig(flags.values.get('config'), revision === undefined ? {} : { revision });

  const { documents } = await readManifests(path);
  const templates = documents.flatMap((document) => findPodTemplates(document.value, path));
  const [template, ...others] = templates;
  if (!template || others.length > 0) {
    throw new InputError(`${path}: expected exactly one pod or workload with a pod template, found ${templates.length}`);
  }
  const { bootstrap } = renderPodBootstrap({
    pod: template.pod,
    namespace: template.namespace || 'default',
    config,
    workload: template.workload,
  });
  loadBootstrapValidator().assertValid(bootstrap);
  writeStdout(`${JSON.stringify(bootstrap, null, 2)}\n`);
}
