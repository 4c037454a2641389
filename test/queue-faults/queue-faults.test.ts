/**
 * The queue-fault suite, short version (CI): every fault of the SQS, RabbitMQ and Pub/Sub fault proxies for
 * a few seconds each, against one collector per queue kind, crashes posted throughout. The long
 * version is `scripts/queue-faults --fault-seconds 30`. Checked: every acknowledged crash is
 * announced (each message read as a crash ID whose raw crash was already stored), none of those
 * announced was unacknowledged; no collector exits on its own; an outage fails the heartbeat's
 * queue check; an answer that accounts for nothing is not hammered; SIGTERM while the queue hangs
 * exits 0 within the deadline and a few seconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pubsubSkipReason } from '../helpers/queues.js';
import { runQueueFaults, table } from './harness.js';

test('I11, I13: queue faults: refused, frozen, cut, deleted, full and nonsense queues: every acknowledged crash announced, no exit, the heartbeat tells', async (t) => {
  const result = await runQueueFaults({
    faultSeconds: Number(process.env['QUEUE_FAULT_SECONDS'] ?? 3),
    kinds: ['sqs', 'amqp', ...(pubsubSkipReason() ? [] : (['pubsub'] as const))],
    onProgress: (line) => t.diagnostic(line),
  });
  if (pubsubSkipReason()) t.diagnostic(`Pub/Sub skipped: ${pubsubSkipReason()}`);
  for (const line of table(result).split('\n')) t.diagnostic(line);
  t.diagnostic(`acknowledged ${result.acknowledged}, announced ${result.announced}, repeats ${result.repeats}; shutdown ${JSON.stringify(result.shutdown)}`);
  assert.deepEqual(result.problems, []);
  assert.equal(result.announced, result.acknowledged);
  for (const shutdown of result.shutdown) {
    assert.equal(shutdown.exitCode, 0);
    assert.ok(shutdown.seconds <= shutdown.deadlineSeconds + 3, `${shutdown.kind}: shutdown took ${shutdown.seconds} s`);
    assert.equal(shutdown.leftStored, 3, `${shutdown.kind}: the crashes the queue did not take were left stored`);
  }
  const seconds = Number(process.env['QUEUE_FAULT_SECONDS'] ?? 3);
  for (const none of result.scenarios.filter((row) => row.name.startsWith('accounts for none'))) {
    assert.ok(none.callsDuringFault! <= 4 * seconds + 4, `${none.kind}: an answer for nothing is retried with a pause, not hammered (${none.callsDuringFault} calls in ${seconds} s)`);
  }
});
