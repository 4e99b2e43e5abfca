// Istio's webhook selector truth table (istio-injector.md §2.1, TestWebhookSelector) for a default and a canary
// revision installed side by side: which one injects a pod, or "" when neither does.

export type TruthRow = [namespaceLabels: Record<string, string>, podLabels: Record<string, string>, injectedBy: '' | 'istiod' | 'istiod-canary'];

export const TRUTH_TABLE: TruthRow[] = [
  [{}, {}, ''],
  [{}, { 'istio.io/rev': 'canary' }, 'istiod-canary'],
  [{}, { 'sidecar.istio.io/inject': 'true' }, 'istiod'],
  [{}, { 'sidecar.istio.io/inject': 'true', 'istio.io/rev': 'canary' }, 'istiod-canary'],
  [{ 'istio.io/rev': 'canary' }, {}, 'istiod-canary'],
  [{ 'istio.io/rev': 'canary' }, { 'istio.io/rev': 'canary' }, 'istiod-canary'],
  [{ 'istio.io/rev': 'canary' }, { 'sidecar.istio.io/inject': 'true' }, 'istiod-canary'],
  [{ 'istio.io/rev': 'canary' }, { 'sidecar.istio.io/inject': 'true', 'istio.io/rev': 'canary' }, 'istiod-canary'],
  [{ 'istio-injection': 'enabled' }, {}, 'istiod'],
  [{ 'istio-injection': 'enabled' }, { 'sidecar.istio.io/inject': 'true' }, 'istiod'],
  [{ 'istio-injection': 'enabled' }, { 'istio.io/rev': 'canary' }, 'istiod'],
  [{ 'istio-injection': 'enabled' }, { 'sidecar.istio.io/inject': 'true', 'istio.io/rev': 'canary' }, 'istiod'],
  [{ 'istio-injection': 'enabled', 'istio.io/rev': 'canary' }, {}, 'istiod'],
  [{ 'istio-injection': 'enabled', 'istio.io/rev': 'canary' }, { 'sidecar.istio.io/inject': 'true' }, 'istiod'],
  [{ 'istio-injection': 'enabled', 'istio.io/rev': 'canary' }, { 'istio.io/rev': 'canary' }, 'istiod'],
  [
    { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' },
    { 'sidecar.istio.io/inject': 'true', 'istio.io/rev': 'canary' },
    'istiod',
  ],
  [{ 'istio-injection': 'disabled' }, {}, ''],
  [{ 'istio-injection': 'disabled' }, { 'sidecar.istio.io/inject': 'true' }, ''],
  [{ 'istio-injection': 'disabled' }, { 'istio.io/rev': 'canary' }, ''],
  [{ 'istio-injection': 'disabled', 'istio.io/rev': 'canary' }, { 'istio.io/rev': 'canary' }, ''],
  [{ 'istio-injection': 'enabled' }, { 'sidecar.istio.io/inject': 'false' }, ''],
  [{ 'istio.io/rev': 'canary' }, { 'sidecar.istio.io/inject': 'false' }, ''],
  [{}, { 'sidecar.istio.io/inject': 'false', 'istio.io/rev': 'canary' }, ''],
  [{ 'istio.io/rev': 'default' }, {}, 'istiod'],
  [{}, { 'istio.io/rev': 'default' }, 'istiod'],
];
