/**
 * Storage and queue are probed on a timer of their own, whether or not anyone reads: the first
 * read after an outage began already says so (`*_up` 0, the heartbeat failing with a result no
 * older than the interval), and the first read after it ended says it is over. Real collector,
 * real RGW and RabbitMQ behind fault proxies; nothing reads the collector while the state changes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CollectorProcess } from '../helpers/collector-process.js';
import { Cleanups } from '../helpers/cleanups.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { checksOf } from '../helpers/heartbeat.js';
import { metric, scrape } from '../helpers/metrics-text.js';
import { amqpQueue, queueSettings } from '../helpers/queues.js';
import { sleep } from '../helpers/raw-socket.js';
import { s3Settings } from '../helpers/stored-crashes.js';
import { TcpFaultProxy } from '../helpers/tcp-fault-proxy.js';

const cleanups = new Cleanups();
/** The documented probe interval (OPERATIONS.md), and a margin for the probe itself. */
const INTERVAL_S = 5;

test('storage and queue probes run on their own timer: the first read after an outage began, or ended, already tells it', async (t) => {
  const { spool, target } = cleanups.fresh('health-probes');
  const storage = cleanups.keep(await FaultProxy.start(s3Settings().endpoint));
  const broker = cleanups.keep(await TcpFaultProxy.start(Number(new URL(queueSettings().amqpUrl).port)));
  const queue = cleanups.keep(await amqpQueue());
  const collector = cleanups.keep(
    await CollectorProcess.start({ ...target.env, S3_ENDPOINT: storage.url, SPOOL_DIR: spool, ...queue.publishEnv(broker.port), STORAGE_CONNECT_TIMEOUT_SECONDS: '1' }),
  );
  const firstRead = async () => {
    const text = await scrape(collector.url);
    const checks = checksOf(await (await fetch(`${collector.url}/__heartbeat__`)).json());
    return { storageUp: metric(text, 'crashspool_storage_up'), queueUp: metric(text, 'crashspool_queue_up', { queue: queue.publishUrl(broker.port).replace(/:[^:@/]*@/, ':***@') }), checks };
  };
  // Up, and read once: both probes have answered.
  await sleep(1500);
  const before = await firstRead();
  assert.deepEqual([before.storageUp, before.queueUp], [1, 1]);

  await storage.set({ kind: 'refuse' });
  await broker.set('refuse');
  await sleep((INTERVAL_S + 2) * 1000);
  const during = await firstRead();
  t.diagnostic(`first read ${INTERVAL_S + 2} s into the outage: ${JSON.stringify({ storage: during.checks['storage'], queue: during.checks['queue'] })}`);
  assert.equal(during.storageUp, 0, 'storage_up says the outage on the first read');
  assert.equal(during.queueUp, 0, 'queue_up says the outage on the first read');
  assert.equal(during.checks['storage']?.ok, false);
  assert.ok(Number(during.checks['storage']?.['checked_seconds_ago']) <= INTERVAL_S, 'the storage result is no older than one interval');
  assert.equal(during.checks['queue']?.ok, false);

  await storage.set({ kind: 'pass' });
  await broker.set('pass');
  await sleep((INTERVAL_S + 2) * 1000);
  const after = await firstRead();
  assert.deepEqual([after.storageUp, after.queueUp], [1, 1], 'the first read after the outage says it is over');
});
