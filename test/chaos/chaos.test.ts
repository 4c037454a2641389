/**
 * "No acknowledged crash is ever lost" (I1, I3, I8 in docs/INVARIANTS.md): 12 SIGKILLs at random moments while
 * four clients post, one S3 outage, then every acknowledged crash must be in S3 byte for byte.
 * Run hundreds of kills locally with `scripts/chaos --kills 200`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runChaos } from './harness.js';

// 12, not 20, since the campaign (test/campaign) adds ~60 kills of its own to every run.
const KILLS = 12;

test(`I1, I3, I8: no acknowledged crash is lost across ${KILLS} SIGKILLs and an S3 outage`, { timeout: 300_000 }, async () => {
  const { acknowledged, stored, lost, kills, details } = await runChaos({ kills: KILLS, clients: 4 });
  const context = JSON.stringify({ ...details, perKill: undefined }, null, 1);

  assert.equal(kills, KILLS, `every kill hit a running collector\n${context}`);
  assert.deepEqual(details.lostCrashes, [], `lost crashes (seed ${details.seed})`);
  assert.equal(lost, 0);
  assert.equal(stored, acknowledged);
  // 4 clients over 12 lives of 50–600 ms ack 150–350 crashes on 2 cores; far fewer means the load never ran.
  assert.ok(acknowledged >= 60, `only ${acknowledged} crashes acknowledged\n${context}`);
  // Every other life waits for its first ack (10 s at most) before its random span: each must have
  // one, so every restart on a spool a SIGKILL left takes crashes again, and the load ran throughout.
  const silent = details.perKill.filter((kill) => kill.index % 2 === 1 && kill.acknowledged === 0);
  assert.deepEqual(silent, [], `collectors that acknowledged nothing within 10 s of their start\n${context}`);

  assert.deepEqual(details.answers.unexpected, [], 'every answer is an ack, a 503 or no answer at all');
  assert.deepEqual(details.unexpectedExits, [], 'no collector died without being killed');
  assert.equal(details.duplicateIds, 0, 'crash IDs are unique');
  assert.ok(details.outage && details.killCounts.duringStorageOutage >= 2, 'radosgw was down for at least two kills');
  assert.ok(details.killCounts.midRequest > 0, 'some kills hit requests in flight');
  assert.equal(details.finalStart.integrity, 'ok', 'the spool the last kill left passes integrity_check');
  assert.equal(details.finalStart.dead, 0);
  assert.ok(details.drain.drained, `the final collector emptied the spool (${details.drain.ms} ms)`);
  assert.equal(details.drain.dead, 0, 'nothing dead-lettered');
  assert.deepEqual(details.finalExit, { code: 0, signal: null }, 'the final collector shut down cleanly');
});
