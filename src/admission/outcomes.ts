// Every way a call to /inject can end, and what each one answers. The server, the metrics and the logs all read
// this one table, so an outcome cannot be answered one way and counted another.
//
// Rows with `allowed` are answered with an AdmissionReview (HTTP 200): the API server reads the verdict from it.
// Rows without are answered with an HTTP error and a JSON `{ error, message }` body, which the API server treats
// as a failed call (the webhook's failurePolicy applies). Istio answers some malformed bodies with allowed:false
// instead; we keep HTTP errors for requests that are not AdmissionReviews at all, as the issue asks.

export type Outcome =
  | 'injected'
  | 'skipped'
  | 'refused'
  | 'not-a-pod'
  | 'not-create'
  | 'empty-body'
  | 'bad-json'
  | 'not-admission-review'
  | 'missing-request'
  | 'missing-uid'
  | 'missing-object'
  | 'bad-request'
  | 'unsupported-media-type'
  | 'too-large'
  | 'internal-error';

export interface OutcomeRow {
  /** The HTTP status of the answer. */
  httpStatus: number;
  /** Set when the answer is an AdmissionReview: its response.allowed. */
  allowed?: boolean;
  /** The answer's message for HTTP errors; AdmissionReview answers carry their own (see `refused`). */
  message?: string;
  /** Counted in sidecar_injection_failure_total, as Istio counts every handleError. */
  failure: boolean;
  logLevel: 'info' | 'warn' | 'error';
}

/** The largest body we read: Istio's MaxRequestBodyBytes (kube util.go), the same 6 MiB kubewebhook uses. */
export const MAX_BODY_BYTES = 6 * 1024 * 1024;

export const OUTCOMES: Readonly<Record<Outcome, OutcomeRow>> = {
  // The core injected the pod: allowed with a JSON Patch (no patch when the pod already is what injection makes).
  injected: { httpStatus: 200, allowed: true, failure: false, logLevel: 'info' },
  // The core decided not to inject (a SkipReason): allowed, unpatched, counted in sidecar_injection_skip_total.
  skipped: { httpStatus: 200, allowed: true, failure: false, logLevel: 'info' },
  // The core refused the pod (an invalid annotation, or a pod that cannot be injected): denied, with the core's
  // message naming the annotation and value, as Istio denies rather than fails so failurePolicy does not apply.
  refused: { httpStatus: 200, allowed: false, failure: true, logLevel: 'warn' },
  // request.kind/resource is not a core/v1 Pod: not ours to change, so allowed unpatched rather than failed.
  'not-a-pod': { httpStatus: 200, allowed: true, failure: false, logLevel: 'info' },
  // Any operation but CREATE (a DELETE carries no object): sidecars are added once, at creation.
  'not-create': { httpStatus: 200, allowed: true, failure: false, logLevel: 'info' },
  // No body at all: Istio's "no body found".
  'empty-body': {
    httpStatus: 400,
    message: 'the request has no body: POST an AdmissionReview as JSON',
    failure: true,
    logLevel: 'warn',
  },
  // JSON.parse failed, or the JSON holds a __proto__ key or constructor.prototype, which no valid Pod has
  // (label and annotation keys must start with a letter or digit) and which we refuse rather than strip, so the
  // patch is always computed against the exact object received.
  'bad-json': {
    httpStatus: 400,
    message: 'the body is not valid JSON, or it holds a forbidden "__proto__" or "constructor.prototype" key',
    failure: true,
    logLevel: 'warn',
  },
  // Valid JSON but not an admission.k8s.io/v1 or v1beta1 AdmissionReview (e.g. a bare Pod).
  'not-admission-review': {
    httpStatus: 400,
    message: 'the body is not an AdmissionReview: want kind AdmissionReview, apiVersion admission.k8s.io/v1 or admission.k8s.io/v1beta1',
    failure: true,
    logLevel: 'warn',
  },
  'missing-request': {
    httpStatus: 400,
    message: 'the AdmissionReview has no request object',
    failure: true,
    logLevel: 'warn',
  },
  // Without a uid there is nothing to answer: the API server matches the response by it.
  'missing-uid': {
    httpStatus: 400,
    message: 'the AdmissionReview has no request.uid (a non-empty string)',
    failure: true,
    logLevel: 'warn',
  },
  // A Pod CREATE without the pod.
  'missing-object': {
    httpStatus: 400,
    message: 'the AdmissionReview for a Pod CREATE has no request.object',
    failure: true,
    logLevel: 'warn',
  },
  // Any other request Fastify could not read (e.g. a body shorter than its Content-Length).
  'bad-request': {
    httpStatus: 400,
    message: 'the request body could not be read',
    failure: true,
    logLevel: 'warn',
  },
  // `application/json` with any parameters (charset) is JSON; nothing else is parsed (Fastify's text/plain
  // parser is removed).
  'unsupported-media-type': {
    httpStatus: 415,
    message: 'invalid Content-Type, want application/json',
    failure: true,
    logLevel: 'warn',
  },
  // Over MAX_BODY_BYTES. The connection stays open while the rest of the body is read and discarded, so a client
  // still writing receives this answer instead of a reset.
  'too-large': {
    httpStatus: 413,
    message: `the body is larger than ${MAX_BODY_BYTES / 1024 / 1024} MiB`,
    failure: true,
    logLevel: 'warn',
  },
  // A bug. The details go to the log only; the client learns nothing about our internals.
  'internal-error': {
    httpStatus: 500,
    message: 'internal error; the server log has the details',
    failure: true,
    logLevel: 'error',
  },
};

/** The JSON body of an answer that is not an AdmissionReview. */
export interface ErrorBody {
  error: Outcome;
  message: string;
}
