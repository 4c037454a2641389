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

/** Waits until `consumer` has seen every ID, or `ms` passed; the IDs it has not seen. */
async function unseenAfter(consumer: QueueConsumer, ids: readonly string[], ms: number): Promise<string[]> {
  const deadline = Date.now() + ms;
  const unseen = () => ids.filter((id) => !consumer.seen.has(id));
  while (unseen().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return unseen();
}

test('a consumer read that hangs is given up and the consumer reads on; what the hung read took still counts', async () => {
  const ids = Array.from({ length: 6 }, () => newCrashId(new Date()));
  let releaseFirst: (bodies: string[]) => void = () => undefined;
  const reads: (() => Promise<string[]>)[] = [
    () => new Promise<string[]>((resolve) => (releaseFirst = resolve)), // a receive that hangs (until the end of the test)
    // fetch's timeout rejects with a DOMException, which is no Error in Node 20
    () => Promise.reject(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
    () => Promise.resolve(ids.slice(1, 3)), // its storage check hangs on ids[1]
    () => Promise.resolve(ids.slice(3)),
  ];
  let abandoned = 0;
  const queue = {
    publishUrl: () => '',
    publishEnv: () => ({}),
    receive: () => reads.shift()?.() ?? Promise.resolve([]),
    abandon: async () => void (abandoned += 1),
    close: async () => undefined,
  };
  const storage = { get: (key: string) => (key.includes(ids[1]!) ? new Promise<Buffer>(() => undefined) : Promise.resolve(Buffer.from('{}'))) };
  const consumer = new QueueConsumer(queue, storage, { passTimeoutMs: 300, storageTimeoutMs: 300 });
  try {
    assert.deepEqual(await unseenAfter(consumer, ids.slice(1), 5_000), [], 'the reads after a hung one were counted');
    assert.equal(consumer.health.abandonedPasses, 1);
    assert.equal(consumer.health.failedPasses, 1);
    assert.match(consumer.health.lastError ?? '', /timeout|given up/);
    assert.equal(abandoned, 1, 'the queue was told to drop the hung read');
    releaseFirst([ids[0]!]);
    assert.deepEqual(await unseenAfter(consumer, ids, 2_000), [], 'what the hung read took off the queue was counted when it returned');
    assert.deepEqual(consumer.problems, []);
  } finally {
    await consumer.stop();
  }
});

test('the RabbitMQ test queue reads on after its connection to the broker is cut', async () => {
  const tcp = await TcpFaultProxy.start(Number(new URL(queueSettings().amqpUrl).port));
  const queue = await amqpQueue({}, tcp.port);
  const consumer = new QueueConsumer(queue, { get: async () => Buffer.from('{}') });
  const connection = await amqp.connect(queueSettings().amqpUrl);
  const queueName = new URL(queue.publishUrl()).searchParams.get('queue')!;
  const publish = async (count: number) => {
    const channel = await connection.createConfirmChannel();
    const ids = Array.from({ length: count }, () => newCrashId(new Date()));
    for (const id of ids) channel.sendToQueue(queueName, Buffer.from(id), { persistent: true });
    await channel.waitForConfirms();
    await channel.close();
    return ids;
  };
  try {
    const before = await publish(20);
    assert.deepEqual(await unseenAfter(consumer, before, 10_000), []);
    await tcp.set('refuse'); // cuts the consumer's connection, and refuses it for a while
    const during = await publish(20);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await tcp.set('pass');
    assert.deepEqual(await unseenAfter(consumer, during, 10_000), [], 'the consumer connected again and read what came meanwhile');
    assert.ok(consumer.health.failedPasses > 0, 'the cut was felt');
  } finally {
    await connection.close();
    await consumer.stop();
    await queue.close();
    await tcp.close();
  }
});

test('a consumer counts what it reads while the storage checks of earlier messages still wait, and checks every one', async () => {
  const ids = Array.from({ length: 6 }, () => newCrashId(new Date()));
  const reads = [ids.slice(0, 3), ids.slice(3)];
  const queue = {
    publishUrl: () => '',
    publishEnv: () => ({}),
    receive: async () => reads.shift() ?? [],
    close: async () => undefined,
  };
  // Storage answers nothing until the test lets it; then every raw crash is there but the last one.
  let answer: () => void = () => undefined;
  const answered = new Promise<void>((resolve) => (answer = resolve));
  const storage = { get: async (key: string) => (await answered, key.includes(ids[5]!) ? undefined : Buffer.from('{}')) };
  const consumer = new QueueConsumer(queue, storage, { storageTimeoutMs: 60_000 });
  try {
    assert.deepEqual(await unseenAfter(consumer, ids, 3_000), [], 'the second read was counted before storage answered for the first');
    answer();
    await consumer.checked();
    assert.deepEqual(consumer.problems, [`${ids[5]} announced before its raw crash was in storage`]);
  } finally {
    answer();
    await consumer.stop();
  }
});
