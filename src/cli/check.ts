// `sidecar-injector check`: for every pod and pod template in a manifest, whether this revision's webhook would
// inject it in a namespace with the given labels, and why, step by step (like `istioctl x check-inject`). Unlike
// `inject`, the namespace labels and the webhook selectors apply, exactly as when the API server calls us.

import { loadConfig } from '../config/load.js';
import { type InjectorConfig, revisionLabel } from '../config/schema.js';
import { reviewPod } from '../core/review-pod.js';
import { SkipReason } from '../core/reasons.js';
import { UsageError } from '../errors.js';
import { readManifests } from '../manifests/documents.js';
import { findPodTemplates, type PodTemplate } from '../manifests/pod-templates.js';
import { parseFlags } from './args.js';
import { writeStdout } from './output.js';

export async function checkCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, {
    values: ['filename', 'namespace-labels', 'revision', 'config'],
    aliases: { '-f': 'filename' },
  });
  if (flags.positional.length > 0) throw new UsageError(`unexpected argument "${flags.positional[0]}"`);
  const path = flags.values.get('filename');
  if (path === undefined) throw new UsageError('-f FILE is required (- reads standard input)');
  const namespaceLabels = parseLabels(flags.values.get('namespace-labels') ?? '');
  const revision = flags.values.get('revision');
  const config = loadConfig(flags.values.get('config'), revision === undefined ? {} : { revision });

  const { source, documents } = await readManifests(path);
  const templates = documents.flatMap((document) => findPodTemplates(document.value, source));
  const labelText = Object.entries(namespaceLabels).map(([key, value]) => `${key}=${value}`).join(',');
  const lines = [
    `As revision ${revisionLabel(config)}, in a namespace ${labelText ? `labelled ${labelText}` : 'without labels'}:`,
  ];
  if (templates.length === 0) lines.push(`no pods or pod templates in ${source}`);
  for (const template of templates) lines.push('', ...explain(template, namespaceLabels, config));
  writeStdout(`${lines.join('\n')}\n`);
}

/** `k=v,k2=v2` as a label map; "" is a namespace without labels. */
function parseLabels(flag: string): Record<string, string> {
  const labels: Record<string, string> = Object.create(null);
  if (flag === '') return labels;
  for (const item of flag.split(',')) {
    const eq = item.indexOf('=');
    const key = eq > 0 ? item.slice(0, eq).trim() : '';
    if (key === '') {
      throw new UsageError(`--namespace-labels: expected key=value pairs separated by commas, got "${item}"`);
    }
    if (Object.hasOwn(labels, key)) throw new UsageError(`--namespace-labels: label ${key} is given twice`);
    labels[key] = item.slice(eq + 1).trim();
  }
  return labels;
}

function explain(template: PodTemplate, namespaceLabels: Record<string, string>, config: InjectorConfig): string[] {
  const review = reviewPod({
    pod: template.pod,
    namespace: template.namespace || 'default',
    namespaceLabels,
    config,
    workload: template.workload,
    explain: true,
  });
  const { decision } = review;
  const revision = revisionLabel(config);
  let verdict: string;
  if (review.outcome === 'refused') {
    verdict = `revision ${revision} would refuse it (the pod is not created): ${review.error.message}`;
  } else if (review.outcome === 'injected') {
    verdict = `revision ${revision} would inject it (${decision.reason})`;
  } else if (decision.reason === SkipReason.OTHER_REVISION) {
    verdict = `revision ${revision} would not inject it; revision ${decision.revision} would (${decision.reason})`;
  } else {
    verdict = `revision ${revision} would not inject it (${decision.reason})`;
  }
  return [
    `${template.kind}/${template.name} in namespace ${template.namespace || 'default'}: ${verdict}`,
    ...(decision.steps ?? []).map((step, index) => `  ${index + 1}. ${step}`),
    ...decision.warnings.map((warning) => `  warning: ${warning}`),
  ];
}
