/**
 * The queue-fault rig must not lose what the collector was told is announced: two defects the
 * campaign found (docs/RELIABILITY.md) in the test queues themselves, each with its test here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import amqp from 'amqplib';
import { newCrashId } from '../../src/crash-id.js';
import { QueueConsumer } from '../helpers/queue-consumer.js';
import { amqpQueue, keepingWhatWasRead, queueSettings } from '../helpers/queues.js';
import { TcpFaultProxy } from '../helpers/tcp-fault-proxy.js';
import { scenarios } from './harness.js';

test('a read pass that fails after taking messages off the queue returns them; one that took none fails', async () => {
  const read = await keepingWhatWasRead(async (bodies) => {
    bodies.push('a', 'b');
    throw new Error('404 NOT_FOUND: the queue was deleted');
  });
  assert.deepEqual(read, ['a', 'b']);
  await assert.rejects(
    keepingWhatWasRead(async () => {
      throw new Error('connection refused');
    }),
    /connection refused/,
  );
});

test("the RabbitMQ 'queue deleted' fault takes every confirmed message off the queue before deleting it", async () => {
  const queue = await amqpQueue();
  const tcp = await TcpFaultProxy.start(Number(new URL(queueSettings().amqpUrl).port));
  // Every message names a stored crash, as far as this consumer can tell.
  const consumer = new QueueConsumer(queue, { get: async () => Buffer.from('{}') });
  consumer.pause(); // the processors are slow: what was announced still sits in the queue
  const connection = await amqp.connect(queueSettings().amqpUrl);
  try {
    const channel = await connection.createConfirmChannel();
    const queueName = new URL(queue.publishUrl()).searchParams.get('queue')!;
    const ids = Array.from({ length: 50 }, () => newCrashId(new Date()));
    for (const id of ids) channel.sendToQueue(queueName, Buffer.from(id), { persistent: true });
    await channel.waitForConfirms();
    await channel.close();

    const deleted = scenarios(['amqp']).find((scenario) => scenario.name.startsWith('queue deleted'))!;
    const heal = await deleted.inject({ queue, tcp, consumer });
    assert.deepEqual([...consumer.seen.keys()].sort(), [...ids].sort(), 'every confirmed message was read before the queue went');
    await heal();
  } finally {
    await connection.close();
    await consumer.stop();
    await tcp.close();
    await queue.close();
  }
});
