// Reading the config file: the only I/O of the config module. An absent path means the embedded default.

import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ConfigError } from '../errors.js';
import { type InjectorConfig, resolveConfig } from './schema.js';

export function loadConfig(path: string | undefined, overrides: { revision?: string } = {}): InjectorConfig {
  let document: unknown = null;
  if (path !== undefined) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new ConfigError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    try {
      document = parse(text);
    } catch (error) {
      throw new ConfigError(`${path} is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  const config = resolveConfig(document);
  if (overrides.revision === undefined) return config;
  return resolveConfig({ ...(document as object | null), revision: overrides.revision });
}
