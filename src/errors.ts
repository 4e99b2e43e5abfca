// Every error this program raises on purpose, each with a stable code. Anything else that reaches an edge is a
// bug: the edges turn it into a generic answer and log it, never a stack trace to a client.

export type ErrorCode =
  /** The config file is unreadable or fails validation. */
  | 'SI_ERR_CONFIG'
  /** A pod annotation has a value Istio would refuse; the pod is denied (allowed: false). */
  | 'SI_ERR_INVALID_ANNOTATION'
  /** The pod object cannot be injected (e.g. spec.containers is not a list). */
  | 'SI_ERR_INVALID_POD'
  /** A command line flag or argument is wrong. */
  | 'SI_ERR_USAGE'
  /** An input file cannot be read or parsed. */
  | 'SI_ERR_INPUT'
  /** The serving certificate or key cannot be read, written or used. */
  | 'SI_ERR_TLS'
  /** Cluster access (in-cluster service account or KUBECONFIG) is configured but cannot be loaded. */
  | 'SI_ERR_CLUSTER'
  /** A rendered Envoy bootstrap fails Envoy's schema; the pod is denied with the problems. */
  | 'SI_ERR_INVALID_BOOTSTRAP';

export class InjectorError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'InjectorError';
  }
}

export class ConfigError extends InjectorError {
  constructor(message: string) {
    super('SI_ERR_CONFIG', `invalid config: ${message}`);
  }
}

/** One or more annotations were refused; `problems` holds one sentence per annotation. */
export class AnnotationError extends InjectorError {
  constructor(readonly problems: string[]) {
    super('SI_ERR_INVALID_ANNOTATION', `invalid pod annotations: ${problems.join('; ')}`);
  }
}

export class InvalidPodError extends InjectorError {
  constructor(message: string) {
    super('SI_ERR_INVALID_POD', message);
  }
}

export class UsageError extends InjectorError {
  constructor(message: string) {
    super('SI_ERR_USAGE', message);
  }
}

export class InputError extends InjectorError {
  constructor(message: string) {
    super('SI_ERR_INPUT', message);
  }
}

export class TlsError extends InjectorError {
  constructor(message: string) {
    super('SI_ERR_TLS', message);
  }
}

export class ClusterAccessError extends InjectorError {
  constructor(message: string) {
    super('SI_ERR_CLUSTER', message);
  }
}

/** The bootstrap Envoy would refuse; `problems` holds one "path: problem" sentence each. */
export class InvalidBootstrapError extends InjectorError {
  constructor(readonly problems: string[]) {
    super('SI_ERR_INVALID_BOOTSTRAP', `invalid Envoy bootstrap: ${problems.join('; ')}`);
  }
}
