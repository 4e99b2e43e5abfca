// `sidecar-injector inject`: manual injection, as `istioctl kube-inject`. A manifest carries no namespace labels,
// so every pod template is injected unless it opts out, uses the host network or sits in an ignored namespace;
// skipped ones get istioctl's warning on stderr. istioctl checks only the pod template's own namespace, which
// workloads rarely set; we also take the workload's, as istiod would never inject those pods either.
// A document without an injected pod is written back byte for byte (istioctl re-serialises skipped ones).
// Nothing is written when any pod is refused, so a pipe into `kubectl apply` never applies half a file.

import { writeFile } from 'node:fs/promises';
import jsonpatch, { type Operation as JsonPatchOperation } from 'fast-json-patch';
import { loadConfig } from '../config/load.js';
import type { InjectorConfig } from '../config/schema.js';
import { bootstrapProblems } from '../bootstrap-validation/load.js';
import { reviewPod } from '../core/review-pod.js';
import { SkipReason } from '../core/reasons.js';
import { InjectorError, InputError, UsageError } from '../errors.js';
import { joinDocuments, readManifests, serializeDocument } from '../manifests/documents.js';
import { findPodTemplates, type PodTemplate } from '../manifests/pod-templates.js';
import { parseFlags } from './args.js';
import { writeStdout } from './output.js';

export async function injectCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, {
    values: ['filename', 'output', 'revision', 'config'],
    aliases: { '-f': 'filename', '-o': 'output' },
  });
  if (flags.positional.length > 0) throw new UsageError(`unexpected argument "${flags.positional[0]}"`);
  const path = flags.values.get('filename');
  if (path === undefined) throw new UsageError('-f FILE is required (- reads standard input)');
  const revision = flags.values.get('revision');
  const config = loadConfig(flags.values.get('config'), revision === undefined ? {} : { revision });

  const { source, format, documents } = await readManifests(path);
  const warnings: string[] = [];
  const texts = documents.map((document) => {
    let changed = false;
    for (const template of findPodTemplates(document.value, source)) {
      if (injectTemplate(template, config, source, warnings)) changed = true;
    }
    return changed ? serializeDocument(format, document.value) : document.text;
  });
  const output = joinDocuments(format, texts);
  // Only now: a refused pod ends the command with its one error line and nothing else.
  for (const warning of warnings) process.stderr.write(`${warning}\n`);

  const outputPath = flags.values.get('output');
  if (outputPath === undefined) {
    writeStdout(output);
    return;
  }
  try {
    await writeFile(outputPath, output);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new InputError(`cannot write ${outputPath}: ${reason}`);
  }
}

/** Injects one pod template in place; false when it is skipped, with istioctl's warning added to `warnings`. */
function injectTemplate(template: PodTemplate, config: InjectorConfig, source: string, warnings: string[]): boolean {
  const review = reviewPod({
    pod: template.pod,
    namespace: template.namespace || 'default',
    namespaceLabels: undefined,
    config,
    manual: true,
    workload: template.workload,
    validateBootstrap: bootstrapProblems,
  });
  switch (review.outcome) {
    case 'skipped': {
      const fullName = template.namespace ? `${template.namespace}/${template.name}` : template.name;
      const hostNetwork = review.decision.reason === SkipReason.HOST_NETWORK;
      const why = hostNetwork ? 'has host networking enabled' : 'has sidecar injection disabled';
      warnings.push(`===> Skipping injection because ${template.kind} ${JSON.stringify(fullName)} ${why}`);
      return false;
    }
    case 'refused': {
      // One line, whatever the annotation values hold.
      const message = review.error.message.replace(/\r?\n/g, '\\n');
      throw new InjectorError(review.error.code, `${source}: ${template.kind}/${template.name}: ${message}`);
    }
    case 'injected':
      jsonpatch.applyPatch(template.pod, review.patch as JsonPatchOperation[], true, true);
      // The webhook sends these as AdmissionResponse warnings, which kubectl prints; here they go to stderr.
      for (const warning of review.decision.warnings) warnings.push(`Warning: ${template.kind}/${template.name}: ${warning}`);
      return true;
  }
}
