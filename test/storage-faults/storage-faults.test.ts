/**
 * The storage-fault suite, short version (CI): a backlog of 250 crashes under each fault of the fault
 * proxy in front of Ceph RGW. The long version is `scripts/storage-faults --crashes 1000 --fault-seconds 90`.
 * Bounds checked: under 30% 5xx the drain rate is at least half the healthy one; under 90% it
 * still makes progress; after every fault heals the spool empties (nothing hangs on an old
 * connection); health answers within 1 s throughout; SIGTERM during a blackhole exits 0 within the
 * shutdown deadline; every acknowledged crash is in S3 byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runStorageFaults } from './harness.js';
import { scenarios } from './scenarios.js';

test('I2, I3: storage faults: the drainer goes on through hangs, stutters and slowness; health answers fast; nothing is lost', async (t) => {
  const result = await runStorageFaults({
    // 250: a backlog that takes a few seconds to drain, so the rates compared are not a 2 s sample.
    crashes: Number(process.env['FAULT_CRASHES'] ?? 250),
    scenarios: scenarios(Number(process.env['FAULT_SECONDS'] ?? 6)),
    shutdownCheck: true,
    onProgress: (line) => t.diagnostic(line),
  });
  t.diagnostic(`heartbeat ${JSON.stringify(result.heartbeat)}; acknowledged ${result.acknowledged}, stored ${result.stored}`);
  assert.deepEqual(result.problems, []);
  assert.equal(result.stored, result.acknowledged);
  const byName = new Map(result.scenarios.map((scenario) => [scenario.name, scenario]));
  const healthy = byName.get('healthy')!.rateDuringFault;
  const flaky30 = byName.get('flaky 30% 5xx')!.rateDuringFault;
  assert.ok(flaky30 >= healthy / 2, `under 30% 5xx: ${flaky30}/s, healthy ${healthy}/s`);
  assert.ok(byName.get('flaky 90% 5xx')!.uploadsDuringFault > 0, 'under 90% 5xx it still makes progress');
  for (const name of ['blackhole', 'stall after 20 bytes', 'cut mid-response']) {
    assert.ok(byName.get(name)!.secondsToDrainAfterHeal < 30, `${name}: drained ${byName.get(name)!.secondsToDrainAfterHeal} s after healing`);
  }
  assert.equal(result.heartbeat.late, 0, `every health probe answered within 1 s (slowest ${result.heartbeat.slowest_ms} ms)`);
  assert.equal(result.heartbeat.failed, 0);
  assert.equal(result.shutdown?.exitCode, 0);
  assert.ok(result.shutdown!.seconds <= result.shutdown!.deadlineSeconds + 1.5, `shutdown took ${result.shutdown!.seconds} s`);
});
