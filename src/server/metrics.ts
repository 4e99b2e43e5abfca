// Istio's injector metrics (pkg/kube/inject/monitoring.go) in the Prometheus text format, written by hand: five
// series do not need a client library, and counting stays a few integer additions per review.
//
// The one difference from Istio: sidecar_injection_skip_total carries a `reason` label (our fixed SkipReason
// values), every reason exported from the start at 0 so a rate() over a reason that has not happened yet works.

import { ALL_SKIP_REASONS, type SkipReason } from '../core/reasons.js';

/** Istio's buckets for sidecar_injection_time_seconds. */
export const TIME_BUCKETS_SECONDS = [0.1, 1, 3, 5, 10, 20, 30, 60] as const;

export interface ReviewMeasurement {
  /** An AdmissionReview was answered (Istio counts success for every written response, allowed or not). */
  success: boolean;
  failure: boolean;
  skipReason?: SkipReason;
  seconds: number;
}

export class InjectionMetrics {
  private requests = 0;
  private successes = 0;
  private failures = 0;
  private readonly skips = new Map<SkipReason, number>(ALL_SKIP_REASONS.map((reason) => [reason, 0]));
  /** Per-bucket (not cumulative) counts; the last slot is +Inf. */
  private readonly bucketCounts = new Array<number>(TIME_BUCKETS_SECONDS.length + 1).fill(0);
  private secondsSum = 0;

  record(measurement: ReviewMeasurement): void {
    this.requests++;
    if (measurement.success) this.successes++;
    if (measurement.failure) this.failures++;
    if (measurement.skipReason !== undefined) {
      this.skips.set(measurement.skipReason, (this.skips.get(measurement.skipReason) ?? 0) + 1);
    }
    let bucket = 0;
    while (bucket < TIME_BUCKETS_SECONDS.length && measurement.seconds > (TIME_BUCKETS_SECONDS[bucket] as number)) bucket++;
    this.bucketCounts[bucket] = (this.bucketCounts[bucket] as number) + 1;
    this.secondsSum += measurement.seconds;
  }

  /** The text exposition format, version 0.0.4. */
  render(): string {
    const lines = [
      '# HELP sidecar_injection_requests_total Total number of sidecar injection requests.',
      '# TYPE sidecar_injection_requests_total counter',
      `sidecar_injection_requests_total ${this.requests}`,
      '# HELP sidecar_injection_success_total Total number of successful sidecar injection requests.',
      '# TYPE sidecar_injection_success_total counter',
      `sidecar_injection_success_total ${this.successes}`,
      '# HELP sidecar_injection_failure_total Total number of failed sidecar injection requests.',
      '# TYPE sidecar_injection_failure_total counter',
      `sidecar_injection_failure_total ${this.failures}`,
      '# HELP sidecar_injection_skip_total Total number of skipped sidecar injection requests, by reason.',
      '# TYPE sidecar_injection_skip_total counter',
    ];
    for (const [reason, count] of this.skips) lines.push(`sidecar_injection_skip_total{reason="${reason}"} ${count}`);
    lines.push(
      '# HELP sidecar_injection_time_seconds Total time taken for injection in seconds.',
      '# TYPE sidecar_injection_time_seconds histogram',
    );
    let cumulative = 0;
    for (const [i, bound] of TIME_BUCKETS_SECONDS.entries()) {
      cumulative += this.bucketCounts[i] as number;
      lines.push(`sidecar_injection_time_seconds_bucket{le="${bound}"} ${cumulative}`);
    }
    cumulative += this.bucketCounts[TIME_BUCKETS_SECONDS.length] as number;
    lines.push(
      `sidecar_injection_time_seconds_bucket{le="+Inf"} ${cumulative}`,
      `sidecar_injection_time_seconds_sum ${this.secondsSum}`,
      `sidecar_injection_time_seconds_count ${cumulative}`,
    );
    return `${lines.join('\n')}\n`;
  }
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
