// The HTTPS admission webhook: POST /inject, plus /healthz, /readyz and /metrics. The server only moves bytes,
// counts and logs; admission/ names each outcome and the core decides. Built from a small options object so
// tests start the very same app on port 0.

import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { Logger } from 'pino';
import { decodeAdmissionReview, type ReviewIdentity } from '../admission/decode.js';
import { type AdmissionVerdict, encodeAdmissionReview } from '../admission/encode.js';
import { type ErrorBody, MAX_BODY_BYTES, type Outcome, OUTCOMES } from '../admission/outcomes.js';
import type { InjectorConfig } from '../config/schema.js';
import { isObject } from '../core/json.js';
import { own, type StringMap } from '../core/labels.js';
import type { SkipReason } from '../core/reasons.js';
import { reviewPod } from '../core/review-pod.js';
import { renderPodBootstrap } from '../core/bootstrap.js';
import type { BootstrapValidation } from '../core/templates/template.js';
import { InjectorError } from '../errors.js';
import type { NamespaceLabels } from '../kube/namespace-labels.js';
import { InjectionMetrics, METRICS_CONTENT_TYPE } from './metrics.js';
import type { ServingCertificate } from './tls.js';

export interface AppOptions {
  tls: ServingCertificate;
  config: InjectorConfig;
  namespaceLabels: NamespaceLabels;
  logger: Logger;
  /** Envoy's schema check for the envoy template; without it, rendered bootstraps are not checked. */
  validateBootstrap?: BootstrapValidation;
  /**
   * Aborted when shutdown begins. /readyz fails from then on while requests are still served, so the Service
   * stops sending new connections before the server stops accepting them; reviews are answered with
   * Connection: close from then on too (see `draining`).
   */
  shutdown?: AbortSignal;
  /** More series for /metrics, in the Prometheus text format (the caBundle patcher's counters). */
  extraMetrics?: () => string;
}

// ---- limits ---------------------------------------------------------------------------------------------------
// The API server gives up on a webhook after timeoutSeconds (10 s by default, Istio's chart keeps it): a request
// still arriving after that is answered to no one, so it may hold a socket no longer.
export const REQUEST_TIMEOUT_MS = 10_000;
// The API server sends its headers in one write; only a stalled or hostile client needs more than a few seconds.
export const HEADERS_TIMEOUT_MS = 5_000;
// The TLS handshake, before the headers, gets what the API server waits for it: Node's default of 120 s would let
// a client that connects and stalls, or trickles its hello, hold the socket that long.
export const HANDSHAKE_TIMEOUT_MS = 10_000;
// Node checks the two timeouts above on this interval (default 30 s, which would let a stalled request live 40 s).
export const TIMEOUT_CHECK_INTERVAL_MS = 1_000;
// Longer than the API server's idle timeout for webhook connections (Go's 90 s IdleConnTimeout), so the client,
// not we, closes an idle connection: otherwise a POST can race our close and fail, and Go does not retry a POST.
// Shutdown does not wait for it: closeGracefully closes idle connections itself.
const KEEP_ALIVE_TIMEOUT_MS = 95_000;
// Bounded drain at shutdown: no admission request legitimately outlives the API server's default 10 s timeout.
export const DRAIN_DEADLINE_MS = 10_000;
const IDLE_CLOSE_INTERVAL_MS = 100;

/** response.status.code of a denied pod; the API server reports it as the status of the refused create. */
const DENIED_STATUS_CODE = 400;

const INJECT_USAGE = 'POST an AdmissionReview to /inject';
/** What Fastify sets for a JSON object; set by hand for answers sent as JSON text. */
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** Fastify's errors mapped to the outcome they mean; anything else is ours, hence internal. */
function outcomeOfError(error: FastifyError): Outcome {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'too-large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported-media-type';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'empty-body';
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'bad-json';
  }
  const status = error.statusCode;
  return status !== undefined && status >= 400 && status < 500 ? 'bad-request' : 'internal-error';
}

const errorBody = (outcome: Outcome): ErrorBody => ({ error: outcome, message: OUTCOMES[outcome].message ?? outcome });

/** Pod name for the log: the name, or generateName when the API server has not named it yet. */
function podName(pod: StringMap): string | undefined {
  const metadata = isObject(pod.metadata) ? pod.metadata : undefined;
  return own(metadata, 'name') || own(metadata, 'generateName');
}

/** What the review's log line says; never the pod itself. */
interface ReviewLogFields {
  decision?: Outcome;
  durationMs?: number;
  uid?: string;
  namespace?: string;
  pod?: string;
  reason?: string;
  revision?: string;
  /** Why a pod was refused: the core's message, which the user sees too. */
  error?: string;
  /** A bug's details, stack included: for the log only, never the answer. */
  err?: unknown;
}

export function buildApp(options: AppOptions) {
  const { config, namespaceLabels, logger } = options;
  const metrics = new InjectionMetrics();

  const app = Fastify({
    https: {
      key: options.tls.key,
      cert: options.tls.cert,
      minVersion: 'TLSv1.2',
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      headersTimeout: HEADERS_TIMEOUT_MS,
      connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
    },
    bodyLimit: MAX_BODY_BYTES,
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // During a drain, requests on open connections are still answered (with Connection: close) instead of 503:
    // a 503 fails the pod's creation under failurePolicy Fail.
    return503OnClosing: false,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    loggerInstance: logger,
    // One line per review is ours to write; Fastify's two lines per request are noise at webhook rates.
    logController: new LogController({ disableRequestLogging: true }),
    // The review line carries the uid; a child logger per request for Fastify's request id would be pure cost.
    childLoggerFactory: (parent) => parent,
  });
  // Fastify parses text/plain by default, which would let a JSON route accept it.
  app.removeContentTypeParser('text/plain');

  // From the start of shutdown, every answer says Connection: close, including those to requests already in
  // flight (Fastify marks only requests that arrive once it closes): the client then does not send another
  // request on a connection we are about to close, a POST Go's client would not retry. Not only once closing: a
  // busy kept-alive client always has its next request on the wire, which Node counts as idle until it reads it,
  // so closing idle connections would reset that request. Told at shutdown, busy clients are on new connections
  // by the time the drain begins.
  let draining = false;
  app.addHook('preClose', (done) => {
    draining = true;
    done();
  });

  /** Counts, logs and sends: the one exit of every /inject request. */
  function finish(
    reply: FastifyReply,
    outcome: Outcome,
    body: unknown,
    fields: ReviewLogFields,
    skipReason?: SkipReason,
  ): void {
    const row = OUTCOMES[outcome];
    // elapsedTime runs from routing (headers read), so it includes reading and parsing the body, as Istio's timer
    // does. Fastify keeps it because it has a logger.
    const durationMs = reply.elapsedTime;
    metrics.record({ success: row.allowed !== undefined, failure: row.failure, skipReason, seconds: durationMs / 1000 });
    fields.decision = outcome;
    fields.durationMs = Math.round(durationMs * 1000) / 1000;
    logger[row.logLevel](fields, 'review');
    if (draining || options.shutdown?.aborted) reply.header('connection', 'close');
    reply.code(row.httpStatus).send(body);
  }

  function answer(
    reply: FastifyReply,
    review: ReviewIdentity,
    outcome: Outcome,
    verdict: AdmissionVerdict,
    fields: ReviewLogFields,
    skipReason?: SkipReason,
  ): void {
    reply.type(JSON_CONTENT_TYPE);
    finish(reply, outcome, encodeAdmissionReview(review, verdict), fields, skipReason);
  }

  function handleInject(request: FastifyRequest, reply: FastifyReply): void {
    const decoded = decodeAdmissionReview(request.body);
    if (decoded.kind === 'invalid') {
      finish(reply, decoded.outcome, errorBody(decoded.outcome), { uid: decoded.uid });
      return;
    }
    const { uid, namespace } = decoded;
    if (decoded.kind === 'ignored') {
      answer(reply, decoded, decoded.outcome, { allowed: true }, { uid, namespace, pod: decoded.name });
      return;
    }
    const result = reviewPod({
      pod: decoded.pod,
      namespace,
      namespaceLabels: namespaceLabels.get(namespace),
      config,
      validateBootstrap: options.validateBootstrap,
    });
    const { decision } = result;
    const fields: ReviewLogFields = { uid, namespace, pod: podName(decoded.pod), reason: decision.reason };
    switch (result.outcome) {
      case 'injected':
        fields.revision = decision.revision;
        answer(reply, decoded, 'injected', { allowed: true, patch: result.patch, warnings: decision.warnings }, fields);
        return;
      case 'skipped':
        answer(
          reply,
          decoded,
          'skipped',
          { allowed: true, warnings: decision.warnings },
          fields,
          decision.reason as SkipReason,
        );
        return;
      case 'refused':
        fields.error = result.error.message;
        answer(
          reply,
          decoded,
          'refused',
          {
            allowed: false,
            warnings: decision.warnings,
            status: { code: DENIED_STATUS_CODE, message: result.error.message },
          },
          fields,
        );
        return;
    }
  }

  function handleInjectError(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
    const outcome = outcomeOfError(error);
    // Fastify marks a body it did not read with Connection: close, and Node then closes the socket while the
    // client is still writing: the client sees a reset, never the 413. Kept open, Node reads and discards the rest
    // of the body (bounded by REQUEST_TIMEOUT_MS) and the client reads the answer when it is done writing.
    if (outcome === 'too-large') reply.removeHeader('connection');
    finish(reply, outcome, errorBody(outcome), outcome === 'internal-error' ? { err: error } : {});
  }

  const injectRoute = { errorHandler: handleInjectError };
  app.post('/inject', injectRoute, handleInject);
  // Like istiod, which also serves /inject/<path> (its path segments set proxy env, which we do not apply yet).
  app.post('/inject/*', injectRoute, handleInject);

  // Anyone can ask why a pod would or would not be injected, with the namespace labels this server knows, and
  // which bootstrap its proxy would start from (envoy template). Read-only: nothing is counted or changed.
  const debugPod = (request: FastifyRequest) => {
    const query = request.query as Record<string, unknown>;
    const namespace = typeof query.namespace === 'string' && query.namespace ? query.namespace : 'default';
    if (!isObject(request.body)) return undefined;
    return { pod: request.body, namespace };
  };
  app.post('/debug/check', (request, reply) => {
    const input = debugPod(request);
    if (!input) return reply.code(400).send({ error: 'bad-request', message: 'POST a Pod as JSON; ?namespace=NAME' });
    const result = reviewPod({ ...input, namespaceLabels: namespaceLabels.get(input.namespace), config, explain: true });
    const { inject, reason, message, revision, warnings, steps } = result.decision;
    const refused = result.outcome === 'refused' ? result.error.message : undefined;
    return reply.send({ namespace: input.namespace, inject: inject && !refused, reason, message, revision, warnings, steps, refused });
  });
  app.post('/debug/bootstrap', (request, reply) => {
    const input = debugPod(request);
    if (!input) return reply.code(400).send({ error: 'bad-request', message: 'POST a Pod as JSON; ?namespace=NAME' });
    try {
      const { bootstrap } = renderPodBootstrap({ ...input, config });
      const problems = options.validateBootstrap?.(bootstrap) ?? [];
      if (problems.length) return reply.code(422).send({ error: 'invalid-bootstrap', problems });
      return reply.send(bootstrap);
    } catch (error) {
      if (error instanceof InjectorError) return reply.code(422).send({ error: error.code, message: error.message });
      throw error;
    }
  });

  app.get('/healthz', (_request, reply) => {
    reply.type('text/plain; charset=utf-8').send('ok\n');
  });
  // TLS is loaded before this app exists (the HTTPS server cannot be built without it), so readiness waits only
  // for namespace labels: without them every pod would be judged as in an unlabelled namespace. It ends when
  // shutdown begins.
  app.get('/readyz', (_request, reply) => {
    const notReady =
      options.shutdown?.aborted || draining
        ? 'shutting down\n'
        : namespaceLabels.ready()
          ? undefined
          : 'namespace labels are not known yet\n';
    reply
      .code(notReady ? 503 : 200)
      .type('text/plain; charset=utf-8')
      .send(notReady ?? 'ok\n');
  });
  app.get('/metrics', (_request, reply) => {
    reply.type(METRICS_CONTENT_TYPE).send(metrics.render() + (options.extraMetrics?.() ?? ''));
  });

  app.setNotFoundHandler((_request, reply) => {
    reply.code(404).send({ error: 'not-found', message: `no such route; ${INJECT_USAGE}` });
  });
  // Outside /inject: the same mapping, never an error's own message or stack.
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const outcome = outcomeOfError(error);
    if (outcome === 'internal-error') logger.error({ err: error }, 'internal error');
    reply.code(OUTCOMES[outcome].httpStatus).send(errorBody(outcome));
  });

  return app;
}

export type InjectorApp = ReturnType<typeof buildApp>;

/**
 * Stops accepting connections and waits for open requests. Fastify closes idle keep-alive connections once, when
 * close starts; one that finishes its request afterwards would stay open until the keep-alive timeout (the 70 s
 * close seen with defaults), so idle connections are closed as they appear, and all of them at the deadline.
 */
export async function closeGracefully(app: InjectorApp, drainDeadlineMs = DRAIN_DEADLINE_MS): Promise<void> {
  const closeIdle = setInterval(() => app.server.closeIdleConnections(), IDLE_CLOSE_INTERVAL_MS);
  const deadline = setTimeout(() => app.server.closeAllConnections(), drainDeadlineMs);
  try {
    await app.close();
  } finally {
    clearInterval(closeIdle);
    clearTimeout(deadline);
  }
}

/**
 * Serves `tls` on every connection opened from now on, without a restart. Open connections keep the certificate
 * they were opened with, so no request in flight fails; the other TLS settings (minVersion) stay as they were.
 */
export function replaceServingCertificate(app: InjectorApp, tls: ServingCertificate): void {
  app.server.setSecureContext({ key: tls.key, cert: tls.cert });
}
