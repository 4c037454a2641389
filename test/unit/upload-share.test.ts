/**
 * How many uploads run while reports are being received (src/drain/upload-share.ts), fed
 * event-loop utilizations by hand. The collector's use of it runs in
 * test/integration/operations.test.ts ("acks come first").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UPLOAD_SHARE_DEFAULTS, UploadShare } from '../../src/drain/upload-share.js';

const share = () => new UploadShare({ min: 1, max: 8, ...UPLOAD_SHARE_DEFAULTS });

test('upload share: starts at the minimum and climbs one upload per tick while the loop has room, up to the maximum', () => {
  const s = share();
  assert.equal(s.limit, 1);
  const seen: number[] = [];
  for (let tick = 0; tick < 10; tick++) {
    s.observe(0.3);
    seen.push(s.limit);
  }
  assert.deepEqual(seen, [2, 3, 4, 5, 6, 7, 8, 8, 8, 8]);
});

test('upload share: halves when the loop is busy, never below the minimum; holds in between', () => {
  const s = share();
  for (let tick = 0; tick < 7; tick++) s.observe(0.1);
  assert.equal(s.limit, 8);
  s.observe(0.7);
  assert.equal(s.limit, 8, 'between the thresholds: held');
  s.observe(0.9);
  assert.equal(s.limit, 4);
  s.observe(0.95);
  s.observe(0.99);
  s.observe(1);
  assert.equal(s.limit, 1, 'a saturated loop keeps the minimum');
  s.observe(0.85);
  assert.equal(s.limit, 1, 'exactly at the busy threshold is not busy, nor room');
});

test('upload share: a busy machine (other processes) halves it too; it climbs only while both the loop and the machine have room', () => {
  const s = share();
  for (let tick = 0; tick < 7; tick++) s.observe(0.1, 0.2);
  assert.equal(s.limit, 8);
  s.observe(0.1, 0.95);
  assert.equal(s.limit, 4, 'the loop is idle but the cores are not: halved');
  s.observe(0.1, 0.8);
  assert.equal(s.limit, 4, 'machine between its thresholds: held');
  s.observe(0.1, 0.5);
  assert.equal(s.limit, 5);
});

test('upload share: reset goes back to the minimum (receiving begins again after a pause)', () => {
  const s = share();
  for (let tick = 0; tick < 5; tick++) s.observe(0);
  assert.equal(s.limit, 6);
  s.reset();
  assert.equal(s.limit, 1);
});

test('upload share: paced while the loop stays busy at the minimum; no longer once it has room', () => {
  const s = share();
  s.observe(0.9);
  assert.equal(s.paced, true, 'busy at the minimum');
  s.observe(0.7);
  assert.equal(s.paced, true, 'between the thresholds: held');
  s.observe(0.3);
  assert.equal([s.paced, s.limit].join(), 'false,2');
  s.observe(0.9);
  assert.equal([s.paced, s.limit].join(), 'false,1', 'halved to the minimum: not paced yet');
  s.observe(0.9);
  assert.equal(s.paced, true);
  s.reset();
  assert.equal(s.paced, false);
});
