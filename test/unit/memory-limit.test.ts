import { test } from 'node:test';
import assert from 'node:assert/strict';
import { drainInflightFor, inflightBudgetFor, memoryLimit } from '../../src/memory-limit.js';
import { loadConfig } from '../../src/config.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

test("the memory limit is the container's when it has one below the machine's, else the machine's", () => {
  assert.deepEqual(memoryLimit(512 * MiB, 24 * GiB), { bytes: 512 * MiB, source: 'cgroup' });
  // No limit: Node says 0 or a number past the machine's memory (cgroup v1's "unlimited").
  assert.deepEqual(memoryLimit(0, 24 * GiB), { bytes: 24 * GiB, source: 'machine' });
  assert.deepEqual(memoryLimit(2 ** 63, 24 * GiB), { bytes: 24 * GiB, source: 'machine' });
});

test('auto bounds: a quarter of the limit for requests in flight (128–512 MiB), an eighth for uploads (64–128 MiB)', () => {
  assert.equal(inflightBudgetFor(256 * MiB), 128 * MiB, 'never below what a report at the size limits needs');
  assert.equal(inflightBudgetFor(512 * MiB), 128 * MiB);
  assert.equal(inflightBudgetFor(1 * GiB), 256 * MiB);
  assert.equal(inflightBudgetFor(64 * GiB), 512 * MiB);
  assert.equal(drainInflightFor(512 * MiB), 64 * MiB);
  assert.equal(drainInflightFor(768 * MiB), 96 * MiB);
  assert.equal(drainInflightFor(4 * GiB), 128 * MiB);
});

test('INFLIGHT_MAX_BYTES and DRAIN_INFLIGHT_MAX_BYTES: auto by default, a size when given', () => {
  const auto = loadConfig({});
  assert.equal(auto.inflightMaxBytes, inflightBudgetFor(memoryLimit().bytes));
  assert.equal(auto.drainInflightMaxBytes, drainInflightFor(memoryLimit().bytes));
  const given = loadConfig({ INFLIGHT_MAX_BYTES: '64m', DRAIN_INFLIGHT_MAX_BYTES: 'auto' });
  assert.equal(given.inflightMaxBytes, 64 * MiB);
  assert.throws(() => loadConfig({ INFLIGHT_MAX_BYTES: 'lots' }), /INFLIGHT_MAX_BYTES/);
});
