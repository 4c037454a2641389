/** When the spool writer asks for a WAL checkpoint: a long window only while uploads keep up. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkpointDue } from '../../src/spool/runtime/checkpoint-policy.js';

const MiB = 1024 * 1024;
const window = (appended: number, removed: number) => ({ walBytes: appended + (removed > 0 ? 16 * 1024 : 0), appendedBytes: appended, removedBytes: removed });

test('uploads keeping up (removed at least half of appended): checkpoint once per SPOOL_CHECKPOINT_BYTES', () => {
  assert.equal(checkpointDue(window(8 * MiB, 4 * MiB), 64 * MiB), false);
  assert.equal(checkpointDue(window(63 * MiB, 40 * MiB), 64 * MiB), false);
  assert.equal(checkpointDue(window(64 * MiB, 40 * MiB), 64 * MiB), true);
});

test('storage down or uploads behind: checkpoint every 2 MiB appended, nothing is reused in a longer window', () => {
  assert.equal(checkpointDue(window(2 * MiB - 1, 0), 64 * MiB), false);
  assert.equal(checkpointDue(window(2 * MiB, 0), 64 * MiB), true);
  assert.equal(checkpointDue(window(8 * MiB, 4 * MiB - 1), 64 * MiB), true);
});

test('a SPOOL_CHECKPOINT_BYTES under 2 MiB bounds both', () => {
  assert.equal(checkpointDue(window(1 * MiB, 0), 1 * MiB), true);
  assert.equal(checkpointDue(window(1 * MiB, 1 * MiB), 1 * MiB), true);
  assert.equal(checkpointDue(window(MiB / 2, 0), 1 * MiB), false);
});
