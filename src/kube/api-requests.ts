// What this server's own calls to the API server share (the certificate Secret, the webhook configurations): a
// bound on each request and one readable sentence per failure.

import type { ConfigurationOptions, RequestContext, ResponseContext } from '@kubernetes/client-node';

export type ClientNode = typeof import('@kubernetes/client-node');

/**
 * A GET, PUT or PATCH of one small object takes milliseconds; one still unanswered after this means the API server
 * is unreachable, and the next poll tries again. Without a bound the library waits up to five minutes for headers
 * (undici's default), and every poll behind it waits too.
 */
export const API_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Per-request options that abort the request after API_REQUEST_TIMEOUT_MS. The generated client runs middleware
 * as its own Observable type, not as promises, whatever its ConfigurationOptions type suggests.
 */
export function boundedRequests(k8s: ClientNode): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (context: RequestContext) => {
          context.setSignal(AbortSignal.timeout(API_REQUEST_TIMEOUT_MS));
          return new k8s.Observable(Promise.resolve(context));
        },
        post: (context: ResponseContext) => new k8s.Observable(Promise.resolve(context)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

/** The HTTP status of a failed call, or undefined when the API server never answered. */
export function apiStatus(k8s: ClientNode, error: unknown): number | undefined {
  return error instanceof k8s.ApiException ? error.code : undefined;
}

/** One sentence: the status and the API server's own message (its Status body), or why there was no answer. */
export function describeApiError(k8s: ClientNode, error: unknown): string {
  if (error instanceof k8s.ApiException) {
    let message: unknown;
    try {
      message = (JSON.parse(String(error.body)) as { message?: unknown }).message;
    } catch {
      message = undefined;
    }
    return `the API server answered ${error.code}${typeof message === 'string' ? `: ${message}` : ''}`;
  }
  if (error instanceof DOMException && error.name === 'TimeoutError') {
    return `no answer from the API server within ${API_REQUEST_TIMEOUT_MS / 1000} s`;
  }
  return (error as Error)?.message ?? String(error);
}
