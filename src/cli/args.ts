// A small flag parser: every subcommand declares its flags, anything else is a usage error. No library, because
// the whole surface is a handful of flags and the errors must be one clear line.

import { UsageError } from '../errors.js';

export interface FlagSpec {
  /** Flags that take a value: `--name value` or `--name=value`; short aliases map to long names. */
  values?: string[];
  /** Flags that may repeat and collect values in order. */
  lists?: string[];
  /** Flags without a value. */
  switches?: string[];
  aliases?: Record<string, string>;
}

export interface ParsedFlags {
  values: Map<string, string>;
  lists: Map<string, string[]>;
  switches: Set<string>;
  positional: string[];
}

export function parseFlags(argv: string[], spec: FlagSpec): ParsedFlags {
  const parsed: ParsedFlags = { values: new Map(), lists: new Map(), switches: new Set(), positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('-') || arg === '-') {
      parsed.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const raw = eq >= 0 ? arg.slice(0, eq) : arg;
    const name = spec.aliases?.[raw] ?? raw.replace(/^--?/, '');
    if (spec.switches?.includes(name)) {
      if (eq >= 0) throw new UsageError(`flag --${name} takes no value`);
      parsed.switches.add(name);
      continue;
    }
    const isList = spec.lists?.includes(name) ?? false;
    if (!isList && !spec.values?.includes(name)) throw new UsageError(`unknown flag ${raw}`);
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined) throw new UsageError(`flag --${name} needs a value`);
    if (isList) parsed.lists.set(name, [...(parsed.lists.get(name) ?? []), value]);
    else parsed.values.set(name, value);
  }
  return parsed;
}

export function portFlag(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new UsageError(`--port must be a port number 1..65535, got "${value}"`);
  }
  return Number(value);
}
