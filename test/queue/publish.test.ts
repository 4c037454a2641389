/**
 * I13 announced before deleted: every acknowledged crash's ID reaches the processing queue at
 * least once, and only once its raw crash is in storage. Real processes and real servers: the
 * collector, Ceph RGW (scripts/local-s3), RabbitMQ and an SQS-protocol server
 * (scripts/local-queues). The queue is read as Socorro's processor reads it: receive, then delete
 * (SQS) or ack (AMQP); each message is checked the moment it is read: its body is a crash ID and
 * nothing else, and that crash's raw crash is already in storage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { rawCrashKey } from '../../src/storage/storage-keys.js';
import { CollectorProcess } from '../helpers/collector-process.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport } from '../helpers/http-client.js';
import { metric, scrape } from '../helpers/metrics-text.js';
import { makeReport } from '../helpers/multipart.js';
import { amqpQueue, pubsubQueue, pubsubSkipReason, queueSettings, sqsQueue, type TestQueue } from '../helpers/queues.js';
import { sleep } from '../helpers/raw-socket.js';
import { TcpFaultProxy } from '../helpers/tcp-fault-proxy.js';
import { checksOf } from '../helpers/heartbeat.js';
import { Cleanups } from '../helpers/cleanups.js';
import { expectAnnounced, spoolCount, until } from '../helpers/announced.js';

const dumps = [...loadFixtureDumps().values()].filter((dump) => dump.length < 100_000);
const cleanups = new Cleanups();
const fresh = (name: string) => cleanups.fresh(name);

type Kind = 'sqs' | 'amqp' | 'pubsub';
const skipOf = (kind: Kind) => (kind === 'pubsub' ? pubsubSkipReason() : undefined);

async function queueOf(kind: Kind): Promise<TestQueue> {
  const queue = kind === 'sqs' ? await sqsQueue() : kind === 'amqp' ? await amqpQueue() : await pubsubQueue();
  cleanups.add(() => queue.close());
  return queue;
}

/** A proxy in front of the queue's server that can refuse or hang, and what the collector's environment points at it. */
async function queueProxy(kind: Kind, queue: TestQueue): Promise<{ set(mode: 'refuse' | 'hang' | 'pass'): Promise<void>; env: Record<string, string> }> {
  if (kind === 'amqp') {
    const proxy = await TcpFaultProxy.start(Number(new URL(queueSettings().amqpUrl).port));
    cleanups.add(() => proxy.close());
    return { set: (mode) => proxy.set(mode === 'hang' ? 'freeze' : mode), env: queue.publishEnv(proxy.port) };
  }
  const proxy = await FaultProxy.start(kind === 'sqs' ? queueSettings().sqsEndpoint : `http://${process.env['PUBSUB_EMULATOR_HOST']}`);
  cleanups.add(() => proxy.close());
  return { set: (mode) => proxy.set({ kind: mode === 'hang' ? 'blackhole' : mode }), env: queue.publishEnv(proxy.url) };
}

async function post(collector: CollectorProcess, count: number, acked: string[]): Promise<void> {
  for (let sent = 0; sent < count; sent++) acked.push(crashIdFrom(await postReport(collector.url, makeReport('breakpad', dumps[sent % dumps.length]!))));
}

for (const kind of ['sqs', 'amqp', 'pubsub'] as const) {
  test(`I13: ${kind}: every acknowledged crash is announced, after its raw crash is stored, then leaves the spool`, { skip: skipOf(kind) }, async (t) => {
    const { spool, target } = fresh(`publish-${kind}`);
    const queue = await queueOf(kind);
    const collector = await CollectorProcess.start({ ...target.env, SPOOL_DIR: spool, ...queue.publishEnv() });
    cleanups.add(() => collector.stop());
    const acked: string[] = [];
    await post(collector, 40, acked);
    const { repeats } = await expectAnnounced(t, queue, target, acked);
    assert.equal(repeats, 0, 'a clean run announces each crash once');
    await until('the spool is empty', async () => (await spoolCount(collector, 'pending')) + (await spoolCount(collector, 'stored')) === 0);
    assert.equal(metric(await scrape(collector.url), 'crashspool_published_total'), 40);
  });
}

for (const kind of ['amqp', 'pubsub'] as const) test(`I13: ${kind}: two kill -9 under load, then restarts: every acknowledged crash announced at least once`, { skip: skipOf(kind) }, async (t) => {
  const { spool, target } = fresh(`publish-kills-${kind}`);
  const queue = await queueOf(kind);
  const env = { ...target.env, SPOOL_DIR: spool, ...queue.publishEnv() };
  const acked: string[] = [];
  let collector = await CollectorProcess.start(env);
  for (let kill = 0; kill < 2; kill++) {
    const port = collector.port;
    const load = (async () => {
      for (;;) {
        try {
          acked.push(crashIdFrom(await postReport(collector.url, makeReport('crashpad', dumps[acked.length % dumps.length]!))));
        } catch {
          return; // the collector is gone
        }
      }
    })();
    // Uploads and publishes are under way when the kill lands.
    await until('crashes are being published', async () => collector.countLogs('crash published') > 5 + kill, 30_000);
    await sleep(100 + 300 * kill);
    collector.kill('SIGKILL');
    await collector.exited;
    await load;
    collector = await CollectorProcess.start(env, port);
  }
  cleanups.add(() => collector.stop());
  t.diagnostic(`${acked.length} acknowledged across two kills`);
  // One request in flight at each kill may have been committed and not answered.
  await expectAnnounced(t, queue, target, acked, 90_000, 2);
});

/** Each half of the outage: long enough for several publish timeouts (2 s) and backoffs; the 30 s run was 15 + 15. */
const OUTAGE_HALF_SECONDS = 8;

for (const kind of ['sqs', 'pubsub'] as const) test(`I13: ${kind}: a ${2 * OUTAGE_HALF_SECONDS} s queue outage (refused ${OUTAGE_HALF_SECONDS} s, then hanging ${OUTAGE_HALF_SECONDS} s) while crashes keep arriving: uploads go on, stored crashes wait, all are announced after`, { skip: skipOf(kind) }, async (t) => {
  const { spool, target } = fresh(`publish-outage-${kind}`);
  const queue = await queueOf(kind);
  const proxy = await queueProxy(kind, queue);
  const collector = await CollectorProcess.start({ ...target.env, SPOOL_DIR: spool, ...proxy.env, PUBLISH_TIMEOUT_SECONDS: '2' });
  cleanups.add(() => collector.stop());
  const acked: string[] = [];
  await post(collector, 5, acked);
  await expectAnnounced(t, queue, target, acked);

  const duringOutage: string[] = [];
  for (const mode of ['refuse', 'hang'] as const) {
    await proxy.set(mode);
    const halfOver = Date.now() + OUTAGE_HALF_SECONDS * 1000;
    while (Date.now() < halfOver) {
      await post(collector, 1, duringOutage);
      await sleep(200);
    }
  }
  // Storage took them all while the queue was down; they wait in the spool, stored.
  for (const crashId of duringOutage) assert.ok(await target.reader.get(rawCrashKey(crashId)), `${crashId} uploaded during the queue outage`);
  const text = await scrape(collector.url);
  assert.equal(metric(text, 'crashspool_spool_crashes', { state: 'stored' }), duringOutage.length);
  assert.ok(metric(text, 'crashspool_publish_oldest_age_seconds') > 10, 'the oldest waits for the queue');
  const health = await fetch(`${collector.url}/__heartbeat__`);
  assert.equal(health.status, 503);
  assert.equal(checksOf(await health.json())['queue']?.ok, false);

  await proxy.set('pass');
  // The five before the outage were read already; now those that waited.
  await expectAnnounced(t, queue, target, duringOutage, 60_000);
  await until('the spool is empty', async () => (await spoolCount(collector, 'stored')) === 0);
});

for (const kind of ['amqp', 'pubsub'] as const) test(`I13: ${kind}: SIGTERM during a queue outage exits 0 within its deadline; the restart announces what was left`, { skip: skipOf(kind) }, async (t) => {
  const { spool, target } = fresh(`publish-sigterm-${kind}`);
  const queue = await queueOf(kind);
  const proxy = await queueProxy(kind, queue);
  await proxy.set('refuse');
  const env = { ...target.env, SPOOL_DIR: spool, SHUTDOWN_DEADLINE_SECONDS: '2' };
  const collector = await CollectorProcess.start({ ...env, ...proxy.env });
  const acked: string[] = [];
  await post(collector, 20, acked);
  await until('every crash is stored', async () => (await spoolCount(collector, 'stored')) === 20, 60_000);
  const started = Date.now();
  collector.kill('SIGTERM');
  assert.equal((await collector.exited).code, 0);
  assert.ok(Date.now() - started < 6_000, `exited within its deadline (${Date.now() - started} ms)`);
  const complete = collector.logs.find((line) => String(line.msg).startsWith('shutdown complete'))!;
  assert.equal(complete['left_stored'], 20);
  assert.deepEqual(await queue.receive(), [], 'nothing announced while the queue was down');

  await proxy.set('pass');
  const restarted = await CollectorProcess.start({ ...env, ...queue.publishEnv() });
  cleanups.add(() => restarted.stop());
  await expectAnnounced(t, queue, target, acked);
});

test("Antenna's systemtest on Pub/Sub: one report posted plain, then gzipped, the queue checked for each crash ID: one crash announced once by default (a retry), two with DEDUP_WINDOW=0 (Antenna's behaviour)", { skip: skipOf('pubsub') }, async (t) => {
  for (const window of ['7d', '0'] as const) {
    const { spool, target } = fresh(`publish-antenna-systemtest-${window}`);
    const queue = await queueOf('pubsub');
    const collector = await CollectorProcess.start({ ...target.env, SPOOL_DIR: spool, ...queue.publishEnv(), DEDUP_WINDOW: window });
    cleanups.add(() => collector.stop());
    const plain = makeReport('breakpad', dumps[0]!);
    const gzipped = { ...plain, body: gzipSync(plain.body), gzip: true };
    const ids = [crashIdFrom(await postReport(collector.url, plain)), crashIdFrom(await postReport(collector.url, gzipped))];
    const distinct = [...new Set(ids)];
    assert.equal(distinct.length, window === '0' ? 2 : 1, `DEDUP_WINDOW=${window}: ${ids.join(', ')}`);
    const { repeats } = await expectAnnounced(t, queue, target, distinct);
    assert.equal(repeats, 0, 'each crash announced once');
  }
});
