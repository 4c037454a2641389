/**
 * One conformance suite that every publisher passes, as every storage backend passes
 * storage-conformance: SQS on the SQS-protocol server, RabbitMQ, Pub/Sub on Google's emulator
 * (scripts/local-queues), each behind a fault proxy. What the announcer relies on, whatever the
 * queue: each crash of a batch is confirmed on its own and arrives; a queue that refuses one crash
 * fails that crash alone; a queue that is gone or frozen fails the whole call, within the publish
 * timeout, as a PublishError that says why; `close` ends a call in flight within a deadline.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { newCrashId } from '../../src/crash-id.js';
import { createLogger } from '../../src/logger.js';
import { AmqpPublisher } from '../../src/queue/amqp-publisher.js';
import { PublishError, type CrashPublisher, type EntryFailure, type PublishFailure } from '../../src/queue/publisher.js';
import { PubsubPublisher } from '../../src/queue/pubsub-publisher.js';
import { SqsPublisher } from '../../src/queue/sqs-publisher.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { pubsubReplies } from '../helpers/pubsub-replies.js';
import { amqpQueue, pubsubQueue, pubsubSkipReason, queueSettings, sqsQueue, type AmqpTestQueue, type TestQueue } from '../helpers/queues.js';
import { sqsReplies } from '../helpers/sqs-replies.js';
import { TcpFaultProxy } from '../helpers/tcp-fault-proxy.js';

const TIMEOUT_MS = 1500;
/** How much later than its timeout a bounded call may end (event loop, connection teardown). */
const SLACK_MS = 1500;
const logger = createLogger('silent');

interface Backend {
  queue: TestQueue;
  /** A publisher of this kind, through the backend's fault proxy. */
  publisher(): CrashPublisher;
  /** The same kind of publisher, for a queue or topic that does not exist. */
  missing(): CrashPublisher;
  /** From now on the queue takes every crash but the last of a batch of three (undone by `heal`). */
  refuseLastOfThree(ids: readonly string[]): Promise<void>;
  /** How the queue's refusal counts: the crash's fault, or the queue's own (full). */
  refusalScope: EntryFailure['scope'];
  gone(): Promise<void>;
  frozen(): Promise<void>;
  heal(): Promise<void>;
  close(): Promise<void>;
}

/** The faults of an HTTP queue server (SQS protocol, Pub/Sub), through the fault proxy in front of it. */
function faultsOf(proxy: FaultProxy, queue: TestQueue): Pick<Backend, 'gone' | 'frozen' | 'heal' | 'close'> {
  return {
    gone: () => proxy.set({ kind: 'refuse' }),
    frozen: () => proxy.set({ kind: 'blackhole' }),
    heal: () => proxy.set({ kind: 'pass' }),
    close: async () => {
      await proxy.close();
      await queue.close();
    },
  };
}

async function sqs(): Promise<Backend> {
  const queue = await sqsQueue();
  const proxy = await FaultProxy.start(queueSettings().sqsEndpoint);
  const publisherFor = (queueUrl: string) => new SqsPublisher({ queueUrl, connectMs: TIMEOUT_MS, timeoutMs: TIMEOUT_MS, logger });
  const url = queue.publishUrl(proxy.url).slice('sqs:'.length);
  return {
    queue,
    publisher: () => publisherFor(url),
    missing: () => publisherFor(url.replace(/[^/]+$/, 'crashspool-no-such-queue')),
    refuseLastOfThree: (ids) => proxy.set(sqsReplies.refuse(ids[2]!)),
    refusalScope: 'crash',
    ...faultsOf(proxy, queue),
  };
}

async function amqp(): Promise<Backend> {
  // A queue that holds 5 messages and refuses more (as a full queue of Socorro's side would).
  const queue: AmqpTestQueue = await amqpQueue({ 'x-max-length': 5, 'x-overflow': 'reject-publish' });
  const proxy = await TcpFaultProxy.start(Number(new URL(queueSettings().amqpUrl).port));
  const publisherFor = (url: string) => {
    const parsed = new URL(url);
    const name = parsed.searchParams.get('queue')!;
    parsed.searchParams.delete('queue');
    return new AmqpPublisher({ url: parsed.href, queue: name, connectMs: TIMEOUT_MS, timeoutMs: TIMEOUT_MS, logger });
  };
  const url = queue.publishUrl(proxy.port);
  return {
    queue,
    publisher: () => publisherFor(url),
    missing: () => publisherFor(url.replace(/queue=[^&]+/, 'queue=crashspool-no-such-queue')),
    // Three of five places taken: the first two crashes of the batch fit, the last is refused (nack).
    refuseLastOfThree: () => queue.fill(3),
    refusalScope: 'queue',
    gone: () => proxy.set('refuse'),
    frozen: () => proxy.set('freeze'),
    heal: () => proxy.set('pass'),
    close: async () => {
      await proxy.close();
      await queue.close();
    },
  };
}

async function pubsub(): Promise<Backend & { refuse(which: (crashId: string) => boolean): Promise<void> }> {
  const queue = await pubsubQueue();
  const proxy = await FaultProxy.start(`http://${process.env['PUBSUB_EMULATOR_HOST']}`);
  const topic = queue.publishUrl().slice('pubsub:'.length);
  const publisherFor = (name: string) => new PubsubPublisher({ topic: name, emulatorHost: new URL(proxy.url).host, timeoutMs: TIMEOUT_MS, logger });
  return {
    queue,
    publisher: () => publisherFor(topic),
    missing: () => publisherFor(topic.replace(/[^/]+$/, 'crashspool-no-such-topic')),
    refuseLastOfThree: (ids) => proxy.set(pubsubReplies.refuse(ids[2]!)),
    refuse: (which) => proxy.set(pubsubReplies.refuse(which)),
    refusalScope: 'crash',
    ...faultsOf(proxy, queue),
  };
}

const crashIds = (count: number) => Array.from({ length: count }, () => newCrashId(new Date()));
const crashesIn = async (queue: TestQueue) => (await queue.receive()).filter((body) => !body.startsWith('filler '));

async function rejectsAs(promise: Promise<unknown>, reason: PublishFailure | readonly PublishFailure[]): Promise<void> {
  const reasons: readonly PublishFailure[] = typeof reason === 'string' ? [reason] : reason;
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof PublishError, `a PublishError, not ${String(error)}`);
    assert.ok(reasons.includes(error.reason), `reason ${error.reason} (${error.message}), expected ${reasons.join(' or ')}`);
    return true;
  });
}

const backends = [
  { name: 'sqs', make: sqs, skip: undefined },
  { name: 'amqp', make: amqp, skip: undefined },
  { name: 'pubsub', make: pubsub, skip: pubsubSkipReason() },
];

for (const { name, make, skip } of backends) {
  describe(`I13: publisher conformance: ${name}`, { skip }, () => {
    let backend: Backend;
    const publishers: CrashPublisher[] = [];
    const fresh = async () => {
      backend ??= await make();
      await backend.heal();
      // Each case starts on an empty queue (the RabbitMQ one holds five).
      await crashesIn(backend.queue);
      const publisher = backend.publisher();
      publishers.push(publisher);
      return { backend, publisher };
    };
    after(async () => {
      for (const publisher of publishers) await publisher.close();
      await backend?.close();
    });

    test('reachable: checkReachable resolves; a queue that does not exist fails it as missing', async () => {
      const { backend, publisher } = await fresh();
      await publisher.checkReachable();
      const missing = backend.missing();
      publishers.push(missing);
      await rejectsAs(missing.checkReachable(), 'missing');
    });

    test('a batch is confirmed crash by crash, and each crash arrives once', async () => {
      const { backend, publisher } = await fresh();
      const ids = crashIds(4);
      const result = await publisher.publish(ids);
      assert.deepEqual([...result.published].sort(), [...ids].sort());
      assert.deepEqual(result.failed, []);
      assert.deepEqual(result.unknown, []);
      assert.deepEqual((await crashesIn(backend.queue)).sort(), [...ids].sort());
    });

    test('a queue that refuses one crash fails that crash alone; the others are confirmed and arrive', async () => {
      const { backend, publisher } = await fresh();
      const ids = crashIds(3);
      await backend.refuseLastOfThree(ids);
      const result = await publisher.publish(ids);
      assert.deepEqual([...result.published].sort(), ids.slice(0, 2).sort());
      assert.equal(result.failed.length, 1, JSON.stringify(result.failed));
      assert.equal(result.failed[0]!.crashId, ids[2]);
      assert.equal(result.failed[0]!.scope, backend.refusalScope);
      assert.deepEqual((await crashesIn(backend.queue)).sort(), ids.slice(0, 2).sort());
    });

    test('the server gone: publish and checkReachable fail as a whole, refused', async () => {
      const { backend, publisher } = await fresh();
      await publisher.publish(crashIds(1));
      await backend.gone();
      await rejectsAs(publisher.publish(crashIds(2)), 'refused');
      await rejectsAs(publisher.checkReachable(), 'refused');
      await backend.heal();
      const later = crashIds(2);
      assert.deepEqual([...(await publisher.publish(later)).published].sort(), [...later].sort(), 'back once the server is');
    });

    test(`the server frozen: a call fails as a timeout within its ${TIMEOUT_MS} ms (+${SLACK_MS} ms)`, async () => {
      const { backend, publisher } = await fresh();
      await publisher.publish(crashIds(1));
      await backend.frozen();
      const started = Date.now();
      await rejectsAs(publisher.publish(crashIds(2)), 'timeout');
      const took = Date.now() - started;
      assert.ok(took < TIMEOUT_MS + SLACK_MS, `publish ended after ${took} ms`);
    });

    test('close ends a call in flight on a frozen server within 2 s', async () => {
      const { backend, publisher } = await fresh();
      await publisher.publish(crashIds(1));
      await backend.frozen();
      const inFlight = publisher.publish(crashIds(2)).then(
        () => 'published',
        (error: unknown) => (error instanceof PublishError ? error.reason : String(error)),
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      await publisher.close();
      const outcome = await inFlight;
      const took = Date.now() - started;
      assert.ok(took < 2000, `close and the call in flight ended after ${took} ms`);
      assert.notEqual(outcome, 'published');
    });
  });
}

test('I13: Pub/Sub: a topic that refuses every crash of a batch (400 INVALID_ARGUMENT each time) fails the call as a whole: no crash is blamed, so none is dead-lettered', { skip: pubsubSkipReason() }, async () => {
  const backend = await pubsub();
  const publisher = backend.publisher();
  try {
    const ids = crashIds(3);
    await backend.refuse((crashId) => ids.includes(crashId));
    await rejectsAs(publisher.publish(ids), 'error');
    assert.deepEqual(await crashesIn(backend.queue), []);
  } finally {
    await publisher.close();
    await backend.close();
  }
});
