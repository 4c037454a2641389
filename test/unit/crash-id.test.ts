import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CRASH_ID_PATTERN, crashIdDate, isCrashId, newCrashId } from '../../src/crash-id.js';

test('crash IDs are UUIDv4-shaped with the throttle digit and the UTC date at the end', () => {
  const id = newCrashId(new Date('2026-03-07T23:59:59Z'));
  assert.match(id, CRASH_ID_PATTERN);
  assert.equal(id.slice(-7), '0260307');
  assert.equal(id[14], '4', 'UUID version nibble kept');
  assert.equal(crashIdDate(id), '20260307');
});

test('the throttle digit 1 marks a deferred crash', () => {
  assert.equal(newCrashId(new Date('2026-11-25T00:00:00Z'), 1).slice(-7), '1261125');
});

test('the date is taken in UTC, not local time', () => {
  assert.equal(newCrashId(new Date('2026-12-31T23:30:00-05:00')).slice(-6), '270101');
});

test('crash IDs are unique and validated', () => {
  const ids = new Set(Array.from({ length: 1000 }, () => newCrashId(new Date())));
  assert.equal(ids.size, 1000);
  assert.ok(isCrashId([...ids][0]!));
  assert.ok(!isCrashId('not-a-crash-id'));
  assert.ok(!isCrashId('de1bb258-cbbf-4589-a673-34f8021604x5'));
});
