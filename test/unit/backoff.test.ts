import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../../src/drain/backoff.js';

const policy = { baseMs: 1000, maxMs: 60_000 };

test('the delay doubles per failure within a jitter window of [ceiling/2, ceiling]', () => {
  assert.equal(backoffDelay(policy, 1, () => 0), 500);
  assert.equal(backoffDelay(policy, 1, () => 1), 1000);
  assert.equal(backoffDelay(policy, 3, () => 0), 2000);
  assert.equal(backoffDelay(policy, 3, () => 1), 4000);
});

test('the delay is capped and never below half the cap once there', () => {
  for (const failures of [7, 10, 50, 1000]) {
    const low = backoffDelay(policy, failures, () => 0);
    const high = backoffDelay(policy, failures, () => 0.999999);
    assert.equal(low, 30_000);
    assert.ok(high <= 60_000);
  }
});

test('jitter spreads retries', () => {
  const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(policy, 4)));
  assert.ok(delays.size > 10);
});
