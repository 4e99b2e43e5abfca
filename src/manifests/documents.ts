// Reading and writing manifest files the way kubectl does, so that `inject -f app.yaml | kubectl apply -f -`
// sees the same objects the user wrote.
//
// Documents are split on `---` lines with the rule of Kubernetes' YAMLReader (k8s.io/apimachinery), which is what
// kubectl and istioctl kube-inject use; each document keeps its exact text, so one we do not change is written back
// byte for byte, comments included. Values are read with the YAML 1.1 rules of the Go readers behind kubectl
// (`on` is a boolean, `0644` is octal), and written with YAML 1.1 quoting, so a string "on" stays a string.
//
// A file whose first character is `{` is JSON, as kubectl decides. JSON in gives JSON out: whoever wrote JSON
// usually feeds the result to JSON tools, and a JSON file holds a single object, so it needs no separators.

import { readFile } from 'node:fs/promises';
import { text as readStream } from 'node:stream/consumers';
import {
  type CreateNodeOptions,
  type DocumentOptions,
  type ParseOptions,
  parseDocument,
  type SchemaOptions,
  stringify,
  type ToStringOptions,
} from 'yaml';
import { InputError } from '../errors.js';

export type ManifestFormat = 'yaml' | 'json';

export interface ManifestDocument {
  /** The document's exact text, without the `---` line before it. */
  text: string;
  /** The parsed value; null for a document holding only comments. */
  value: unknown;
}

export interface Manifests {
  /** The file as messages name it: its path, or "standard input". */
  source: string;
  format: ManifestFormat;
  documents: ManifestDocument[];
}

const TIMESTAMP_TAG = 'tag:yaml.org,2002:timestamp';

// Go's YAML 1.1 reader has no sexagesimal numbers (`1:20`) and leaves timestamps as strings; without these tags
// `value: 10:30` would become 630 here and be written back as a number.
const READ_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  version: '1.1',
  prettyErrors: false,
  customTags: (tags) =>
    tags.filter((tag) => typeof tag === 'string' || (tag.tag !== TIMESTAMP_TAG && tag.format !== 'TIME')),
};

// lineWidth 0: no folding of long values such as the sidecar.istio.io/status JSON. No anchors for objects that
// appear twice (the injected resources, say): kubectl reads aliases, but nobody wants to review them.
const WRITE_OPTIONS: CreateNodeOptions & DocumentOptions & SchemaOptions & ToStringOptions = {
  version: '1.1',
  aliasDuplicateObjects: false,
  lineWidth: 0,
};

/** Reads a manifest file, or standard input for `-`. */
export async function readManifests(path: string): Promise<Manifests> {
  let text: string;
  try {
    text = path === '-' ? await readStream(process.stdin) : await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return parseManifests(text, path === '-' ? 'standard input' : path);
}

export function parseManifests(text: string, source: string): Manifests {
  const content = text.startsWith('\uFEFF') ? text.slice(1) : text;
  if (content.trimStart().startsWith('{')) {
    try {
      return { source, format: 'json', documents: [{ text: content, value: JSON.parse(content) }] };
    } catch (error) {
      throw new InputError(`${source} is not valid JSON: ${(error as Error).message}`);
    }
  }
  const documents = splitYaml(content, source).map((chunk) => parseYamlDocument(chunk, source));
  return { source, format: 'yaml', documents };
}

interface Chunk {
  text: string;
  /** 1-based line of the chunk's first line in the file, for messages. */
  line: number;
}

/**
 * YAMLReader's rule: a line starting with `---` ends a document, and only spaces or a comment may follow the
 * dashes on that line. Documents of nothing but whitespace are dropped.
 */
function splitYaml(text: string, source: string): Chunk[] {
  const chunks: Chunk[] = [];
  const lines = text.split(/(?<=\n)/);
  let current: string[] = [];
  let startLine = 1;
  const flush = () => {
    const chunkText = current.join('');
    if (chunkText.trim() !== '') chunks.push({ text: chunkText, line: startLine });
  };
  for (const [index, line] of lines.entries()) {
    if (!line.startsWith('---')) {
      current.push(line);
      continue;
    }
    const rest = line.slice(3).trim();
    if (rest !== '' && !rest.startsWith('#')) {
      throw new InputError(
        `${source}: line ${index + 1}: invalid document separator "${line.trimEnd()}": only a comment may follow ---`,
      );
    }
    flush();
    current = [];
    startLine = index + 2;
  }
  flush();
  return chunks;
}

function parseYamlDocument(chunk: Chunk, source: string): ManifestDocument {
  const document = parseDocument(chunk.text, READ_OPTIONS);
  const error = document.errors[0];
  if (error) {
    // An error at the very end (an unclosed bracket) points past the last newline: name the last line instead.
    const line = chunk.line + countLines(chunk.text.slice(0, Math.min(error.pos[0], chunk.text.length - 1)));
    throw new InputError(`${source}: line ${line}: ${error.message.split('\n')[0]}`);
  }
  try {
    return { text: chunk.text, value: document.toJS() };
  } catch (toJsError) {
    // Too many aliases (a "billion laughs" document) and the like.
    throw new InputError(`${source}: line ${chunk.line}: ${(toJsError as Error).message}`);
  }
}

const countLines = (text: string) => text.split('\n').length - 1;

/** A document's new text, after its value changed. */
export function serializeDocument(format: ManifestFormat, value: unknown): string {
  return format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : stringify(value, WRITE_OPTIONS);
}

/** The file from its documents' texts. As istioctl kube-inject writes it, every YAML document ends with `---`. */
export function joinDocuments(format: ManifestFormat, texts: string[]): string {
  if (format === 'json') return texts.join('');
  return texts.map((text) => `${text.endsWith('\n') ? text : `${text}\n`}---\n`).join('');
}
