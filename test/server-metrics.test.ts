// GET /metrics in the Prometheus text format with Istio's names: every skip reason is exported from the start
// at 0, and the counters and the histogram move as reviews are answered.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_SKIP_REASONS } from '../src/core/reasons.js';
import { TIME_BUCKETS_SECONDS } from '../src/server/metrics.js';
import { admissionReview } from './helpers/admission.js';
import { postJson, send, startServer, type TestServer } from './helpers/https.js';
import { podWith } from './helpers/pods.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

/** Every sample line as name{labels} -> value. */
async function scrape(): Promise<Map<string, number>> {
  const answer = await send(server, '/metrics');
  expect(answer.status).toBe(200);
  expect(answer.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
  const samples = new Map<string, number>();
  for (const line of answer.text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

describe('the metrics of a fresh server', () => {
  it('export every series at 0, including one skip series per reason', async () => {
    const samples = await scrape();
    expect(samples.get('sidecar_injection_requests_total')).toBe(0);
    expect(samples.get('sidecar_injection_success_total')).toBe(0);
    expect(samples.get('sidecar_injection_failure_total')).toBe(0);
    for (const reason of ALL_SKIP_REASONS) expect(samples.get(`sidecar_injection_skip_total{reason="${reason}"}`)).toBe(0);
    for (const bound of TIME_BUCKETS_SECONDS) expect(samples.get(`sidecar_injection_time_seconds_bucket{le="${bound}"}`)).toBe(0);
    expect(samples.get('sidecar_injection_time_seconds_count')).toBe(0);
  });
});

describe('after an injection, two skips, a refusal and a bad request', () => {
  it('count them as Istio does', async () => {
    await postJson(server, admissionReview(podWith({ 'sidecar.istio.io/inject': 'true' })));
    await postJson(server, admissionReview(podWith()));
    const inKubeSystem = podWith({ 'sidecar.istio.io/inject': 'true' });
    (inKubeSystem.metadata as { namespace: string }).namespace = 'kube-system';
    await postJson(server, admissionReview(inKubeSystem, { namespace: 'kube-system' }));
    await postJson(
      server,
      admissionReview(podWith({ 'sidecar.istio.io/inject': 'true' }, { 'status.sidecar.istio.io/port': 'none' })),
    );
    await postJson(server, { not: 'a review' });

    const samples = await scrape();
    expect(samples.get('sidecar_injection_requests_total')).toBe(5);
    // Istio counts a success for every AdmissionReview written, the refusal included.
    expect(samples.get('sidecar_injection_success_total')).toBe(4);
    // ...and a failure for the refusal and for the bad request.
    expect(samples.get('sidecar_injection_failure_total')).toBe(2);
    expect(samples.get('sidecar_injection_skip_total{reason="not_opted_in"}')).toBe(1);
    expect(samples.get('sidecar_injection_skip_total{reason="ignored_namespace"}')).toBe(1);
    expect(samples.get('sidecar_injection_skip_total{reason="host_network"}')).toBe(0);
    // Buckets are cumulative and end with every review.
    const buckets = [...TIME_BUCKETS_SECONDS.map(String), '+Inf'].map((le) => samples.get(`sidecar_injection_time_seconds_bucket{le="${le}"}`) as number);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
    expect(buckets.at(-1)).toBe(5);
    expect(samples.get('sidecar_injection_time_seconds_count')).toBe(5);
    expect(samples.get('sidecar_injection_time_seconds_sum')).toBeGreaterThan(0);
  });
});
