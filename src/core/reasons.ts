// The fixed set of reasons behind every injection decision. Each value is also the `reason` label of the
// sidecar_injection_skip_total metric and the `reason` field of the review's log line, so it must stay stable.

export const InjectReason = {
  NAMESPACE_INJECTION_ENABLED: 'namespace_injection_enabled',
  NAMESPACE_REVISION: 'namespace_revision',
  POD_REVISION: 'pod_revision',
  POD_OPTED_IN: 'pod_opted_in',
  GLOBAL_INJECTION: 'global_injection',
  ALWAYS_INJECT_SELECTOR: 'always_inject_selector',
  MANUAL_INJECTION: 'manual_injection',
} as const;

export const SkipReason = {
  HOST_NETWORK: 'host_network',
  IGNORED_NAMESPACE: 'ignored_namespace',
  NAMESPACE_INJECTION_DISABLED: 'namespace_injection_disabled',
  POD_OPTED_OUT: 'pod_opted_out',
  OTHER_REVISION: 'other_revision',
  NOT_OPTED_IN: 'not_opted_in',
  NEVER_INJECT_SELECTOR: 'never_inject_selector',
  POLICY_DISABLED: 'policy_disabled',
} as const;

export type InjectReason = (typeof InjectReason)[keyof typeof InjectReason];
export type SkipReason = (typeof SkipReason)[keyof typeof SkipReason];
export type Reason = InjectReason | SkipReason;

export const ALL_SKIP_REASONS: readonly SkipReason[] = Object.values(SkipReason);
