// Reading string maps from raw JSON and matching Kubernetes label selectors.
//
// Maps come straight from JSON.parse, so they may hold keys like "__proto__" or "constructor" as own data, and a
// plain `map[key]` would read an inherited member for a key the map lacks. Every lookup goes through `own`.

export type StringMap = Record<string, unknown>;

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** The string value of `key` if the map has it as an own string property. */
export function own(map: StringMap | undefined | null, key: string): string | undefined {
  if (map === undefined || map === null || !Object.hasOwn(map, key)) return undefined;
  const value = map[key];
  return typeof value === 'string' ? value : undefined;
}

export function has(map: StringMap | undefined | null, key: string): boolean {
  return map !== undefined && map !== null && Object.hasOwn(map, key);
}

/**
 * Kubernetes semantics: all requirements must hold; an empty selector matches nothing here, as in Istio's
 * never/always selectors ("empty selectors never match").
 */
export function selectorMatches(selector: LabelSelector, labels: StringMap | undefined): boolean {
  const matchLabels = selector.matchLabels ?? {};
  const expressions = selector.matchExpressions ?? [];
  if (Object.keys(matchLabels).length === 0 && expressions.length === 0) return false;
  for (const [key, value] of Object.entries(matchLabels)) {
    if (own(labels, key) !== value) return false;
  }
  for (const { key, operator, values = [] } of expressions) {
    const value = own(labels, key);
    switch (operator) {
      case 'In':
        if (value === undefined || !values.includes(value)) return false;
        break;
      case 'NotIn':
        if (value !== undefined && values.includes(value)) return false;
        break;
      case 'Exists':
        if (value === undefined) return false;
        break;
      case 'DoesNotExist':
        if (value !== undefined) return false;
        break;
    }
  }
  return true;
}
