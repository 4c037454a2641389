import type { Scenario } from './harness.js';

/** The fault scenarios in order; `faultSeconds` sets how long each timed fault lasts. */
export function scenarios(faultSeconds: number): Scenario[] {
  return [
    { name: 'healthy', mode: { kind: 'pass' }, faultSeconds: 0 },
    { name: 'flaky 30% 5xx', mode: { kind: 'flaky', failRatio: 0.3, maxDelayMs: 100 }, faultSeconds: 0 },
    // Progress at 90% is slow by design (concurrency follows the successes): give it long enough to show.
    { name: 'flaky 90% 5xx', mode: { kind: 'flaky', failRatio: 0.9, maxDelayMs: 100 }, faultSeconds: Math.max(faultSeconds, 20) },
    { name: 'blackhole', mode: { kind: 'blackhole' }, faultSeconds },
    { name: 'stall after 20 bytes', mode: { kind: 'stall', afterBytes: 20 }, faultSeconds },
    { name: 'cut mid-response', mode: { kind: 'cut', afterBytes: 30 }, faultSeconds },
    { name: 'latency 300 ms', mode: { kind: 'latency', ms: 300 }, faultSeconds: 0 },
  ];
}
