import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetrySchedule } from '../../src/drain/retry-schedule.js';

const policy = { baseMs: 1000, maxMs: 60_000 };

test('a crash that failed waits out its backoff, growing per failure in a row; forgotten, it starts at once', () => {
  const retries = new RetrySchedule(policy);
  const now = 1_000_000;
  const first = retries.failed(7, now);
  assert.equal(first.failures, 1);
  assert.ok(first.delay >= 500 && first.delay <= 1000);
  assert.deepEqual([...retries.notStartable(now, [3])].sort(), [3, 7], 'busy crashes and waiting ones');
  assert.deepEqual([...retries.notStartable(now + first.delay, [])], [], 'due again');
  assert.equal(retries.nextAt(now), now + first.delay);
  assert.equal(retries.failed(7, now).failures, 2);
  retries.forget(7);
  assert.equal(retries.size, 0);
  assert.equal(retries.nextAt(now), undefined);
});

test('bounded: an entry long past due (its crash purged) is dropped, and past the limit the oldest goes', () => {
  const retries = new RetrySchedule(policy, 3);
  const now = 1_000_000;
  retries.failed(1, now);
  retries.notStartable(now + 11 * 60_000, []);
  assert.equal(retries.size, 0, 'ten minutes past due and never retried: gone');
  for (const seq of [1, 2, 3, 4]) retries.failed(seq, now);
  assert.equal(retries.size, 3);
  assert.deepEqual([...retries.notStartable(now, [])].sort(), [2, 3, 4], 'the oldest entry made room');
  retries.failed(2, now);
  retries.failed(5, now);
  assert.deepEqual([...retries.notStartable(now, [])].sort(), [2, 4, 5], 'a failure again makes an entry the newest');
});

test('the next retry time of 200,000 crashes is found without spreading them into Math.min', () => {
  const retries = new RetrySchedule(policy, 300_000);
  const now = 1_000_000;
  for (let seq = 0; seq < 200_000; seq++) retries.failed(seq, now);
  const next = retries.nextAt(now);
  assert.ok(next !== undefined && next >= now + 500 && next <= now + 1000);
});
