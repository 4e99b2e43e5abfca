// Semantic comparison of Kubernetes manifests, for the conformance harness: what Kubernetes treats as equal is
// equal here. Empty values (null, "", {}, []) in an object are the same as absent, as Go's omitempty writes them
// (an empty string inside a list, such as istio-iptables' `-x ""`, is kept); resource quantities compare by value
// ("2000m" is "2", "1024Mi" is "1Gi"); JSON kept in annotations compares as JSON. A workload's `status` and the
// zero-valued workload fields Go's client writes (minReadySeconds: 0, paused: false, test: false) are not part of
// injection and are ignored. Map key order never matters; list order always does (containers, env and args are
// ordered in Kubernetes).

const QUANTITY = /^([+-]?[0-9.]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const SCALE: Record<string, number> = {
  m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

function quantity(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const match = QUANTITY.exec(value);
  if (!match) return value;
  return Number(match[1]) * (match[2] ? (SCALE[match[2]] as number) : 1);
}

const ZERO_VALUED_WORKLOAD_FIELDS = new Set(['minReadySeconds', 'paused', 'test']);

const isEmpty = (v: unknown) =>
  v === null || v === undefined || (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);

export function normalise(value: unknown, path: string[] = []): unknown {
  if (Array.isArray(value)) {
    const out = value.map((v, i) => normalise(v, [...path, String(i)])).filter((v) => !isEmpty(v));
    return out;
  }
  if (typeof value === 'object' && value !== null) {
    const parent = path.at(-1);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      let v: unknown = (value as Record<string, unknown>)[key];
      if ((parent === 'limits' || parent === 'requests') && typeof v === 'string') v = quantity(v);
      if (parent === 'annotations' && typeof v === 'string' && v.startsWith('{')) {
        try {
          v = JSON.parse(v);
        } catch {
          // Not JSON after all: compared as text.
        }
      }
      if (key === 'status' && 'apiVersion' in value) continue;
      if (ZERO_VALUED_WORKLOAD_FIELDS.has(key) && parent === 'spec' && (v === 0 || v === false)) continue;
      v = normalise(v, [...path, key]);
      if (!isEmpty(v) && v !== '') out[key] = v;
    }
    return out;
  }
  return value;
}

/** The paths where two normalised values differ, at most `limit` of them. */
export function differences(a: unknown, b: unknown, limit = 3, path = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && Array.isArray(a) === Array.isArray(b)) {
    const out: string[] = [];
    const keys = Array.isArray(a)
      ? [...Array(Math.max(a.length, (b as unknown[]).length)).keys()].map(String)
      : [...new Set([...Object.keys(a), ...Object.keys(b as object)])].sort();
    for (const key of keys) {
      const sub = differences((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], limit - out.length, `${path}/${key}`);
      out.push(...sub);
      if (out.length >= limit) break;
    }
    return out.length ? out : [path || '/'];
  }
  return [`${path || '/'} (ours ${JSON.stringify(a)?.slice(0, 80)}, istio ${JSON.stringify(b)?.slice(0, 80)})`];
}
