/**
 * The announce leg under queues that misbehave (I13: nothing leaves the spool unannounced; I11:
 * no reply ends the process; I6: what leaves unannounced on purpose is logged and counted). Real
 * processes: the collector, Ceph RGW, RabbitMQ, the SQS-protocol server, and fault proxies in
 * front of the queues (test/helpers/tcp-fault-proxy.ts, fault-proxy.ts with sqs-replies.ts).
 * Each test here is one way the announce leg broke at 1949d75 and fails there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CollectorProcess } from '../helpers/collector-process.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { checksOf } from '../helpers/heartbeat.js';
import { crashIdFrom, postReport } from '../helpers/http-client.js';
import { metric, scrape } from '../helpers/metrics-text.js';
import { makeReport } from '../helpers/multipart.js';
import { amqpQueue, queueSettings, sqsQueue, type TestQueue } from '../helpers/queues.js';
import { sleep } from '../helpers/raw-socket.js';
import { inspectWith } from '../helpers/spool-inspect-cli.js';
import { sqsReplies } from '../helpers/sqs-replies.js';
import { TcpFaultProxy } from '../helpers/tcp-fault-proxy.js';
import { Cleanups } from '../helpers/cleanups.js';
import { expectAnnounced, spoolCount, until } from '../helpers/announced.js';

const dumps = [...loadFixtureDumps().values()].filter((dump) => dump.length < 100_000);
const cleanups = new Cleanups();
const fresh = (name: string) => cleanups.fresh(name);

const later = <T extends { close(): Promise<void> } | { stop(): Promise<void> }>(thing: T): T => cleanups.keep(thing);

async function post(collector: CollectorProcess, count: number, acked: string[]): Promise<string[]> {
  const now: string[] = [];
  for (let sent = 0; sent < count; sent++) now.push(crashIdFrom(await postReport(collector.url, makeReport('breakpad', dumps[(acked.length + sent) % dumps.length]!))));
  acked.push(...now);
  return now;
}

async function queueCheck(collector: CollectorProcess) {
  const answer = await fetch(`${collector.url}/__heartbeat__`);
  return { status: answer.status, queue: checksOf(await answer.json())['queue']! };
}

/** The collector is still running: it answers, and it has not exited. */
async function alive(collector: CollectorProcess): Promise<void> {
  assert.equal(collector.child.exitCode, null, `the collector exited: ${collector.stderr} ${JSON.stringify(collector.logs.slice(-3))}`);
  assert.equal((await fetch(`${collector.url}/__lbheartbeat__`)).status, 200);
}

/** Resolves with the exit, or with 'still running' after `ms`. */
const exitWithin = (collector: CollectorProcess, ms: number) => Promise.race([collector.exited, sleep(ms).then(() => 'still running' as const)]);

test('I13: amqp: a queue deleted while the collector is connected: crashes wait stored (unroutable), the heartbeat fails, all are announced once it is declared again', async (t) => {
  const { spool, target } = fresh('queue-deleted');
  const queue = later(await amqpQueue());
  const collector = later(await CollectorProcess.start({ ...target.env, SPOOL_DIR: spool, ...queue.publishEnv(), DRAIN_RETRY_BASE_SECONDS: '0.2' }));
  const acked: string[] = [];
  await post(collector, 2, acked);
  await expectAnnounced(t, queue, target, acked);

  await queue.deleteQueue();
  const whileDeleted = await post(collector, 3, acked);
  await until('the three are in storage', async () => (await spoolCount(collector, 'pending')) === 0, 30_000);
  await sleep(2_000);
  assert.equal(await spoolCount(collector, 'stored'), 3, 'a message that reached no queue is not an announcement: the crashes wait');
  assert.ok(metric(await scrape(collector.url), 'crashspool_publish_failures_total', { reason: 'unroutable' }) > 0, 'counted as unroutable');
  await until('the heartbeat says the queue is missing', async () => !(await queueCheck(collector)).queue.ok, 15_000);
  const { status, queue: check } = await queueCheck(collector);
  t.diagnostic(`heartbeat ${status}: ${JSON.stringify(check)}`);
  assert.equal(status, 503);

  await queue.declareQueue();
  await expectAnnounced(t, queue, target, whileDeleted, 30_000);
  await until('the spool is empty', async () => (await spoolCount(collector, 'stored')) === 0, 30_000);
  await until('the heartbeat passes again', async () => (await queueCheck(collector)).queue.ok, 15_000);
});

test('I13, I6: a spool that announces refuses a start and a drain without PUBLISH_URL; PUBLISH_URL=none lets its crashes go, each logged and counted', async () => {
  const { spool, target } = fresh('announcing-spool');
  const queue = later(await amqpQueue());
  const proxy = later(await TcpFaultProxy.start(Number(new URL(queueSettings().amqpUrl).port)));
  await proxy.set('refuse');
  const env = { ...target.env, SPOOL_DIR: spool, SHUTDOWN_DEADLINE_SECONDS: '1' };
  const first = await CollectorProcess.start({ ...env, ...queue.publishEnv(proxy.port) });
  const acked: string[] = [];
  await post(first, 3, acked);
  await until('the three are stored', async () => (await spoolCount(first, 'stored')) === 3, 30_000);
  first.kill('SIGTERM');
  assert.equal((await first.exited).code, 0);

  // Restarted with PUBLISH_URL forgotten: nothing may leave unannounced.
  await assert.rejects(CollectorProcess.start(env), (error: Error) => {
    assert.match(error.message, /PUBLISH_URL/);
    assert.match(error.message, /3 crashes/);
    return true;
  });
  const drain = await inspectWith({ ...env }, 'drain', '--spool', spool, '--max-time', '10s');
  assert.equal(drain.code, 2, `drain without PUBLISH_URL refuses: ${drain.stdout} ${drain.stderr}`);
  assert.match(drain.stderr, /PUBLISH_URL/);

  // The operator says so explicitly.
  const letGo = later(await CollectorProcess.start({ ...env, PUBLISH_URL: 'none' }));
  await until('the spool is empty', async () => (await spoolCount(letGo, 'stored')) === 0, 10_000);
  assert.equal(letGo.logs.filter((line) => line.msg === 'stored crash removed unannounced').length, 3);
  assert.equal(metric(await scrape(letGo.url), 'crashspool_unannounced_total'), 3);
  assert.deepEqual(await queue.receive(), [], 'nothing was announced');
});

test('I11, I13: sqs: replies that name entries never sent, account for none, leave one out or are not JSON never end the collector; the crashes wait and are announced after', async (t) => {
  const { spool, target } = fresh('sqs-replies');
  const queue = later(await sqsQueue());
  const proxy = later(await FaultProxy.start(queueSettings().sqsEndpoint));
  const collector = later(await CollectorProcess.start({ ...target.env, SPOOL_DIR: spool, ...queue.publishEnv(proxy.url), DRAIN_RETRY_BASE_SECONDS: '0.2' }));
  const acked: string[] = [];
  for (const [name, mode] of Object.entries({
    'unknown Id': sqsReplies.unknownId(),
    'accounts for none': sqsReplies.accountsForNone(),
    'leaves one out': sqsReplies.dropsOne(),
    'not JSON': sqsReplies.garbage(),
  })) {
    await proxy.set(mode);
    const sent = await post(collector, 3, acked);
    await until(`${name}: the crashes are in storage`, async () => (await spoolCount(collector, 'pending')) === 0, 30_000);
    const before = proxy.requests.length;
    await sleep(3_000);
    await alive(collector);
    const calls = proxy.requests.length - before;
    t.diagnostic(`${name}: ${calls} queue calls in 3 s, ${await spoolCount(collector, 'stored')} stored`);
    assert.ok(calls <= 20, `${name}: the queue is not hammered (${calls} calls in 3 s)`);
    if (name !== 'unknown Id' && name !== 'leaves one out') assert.ok((await spoolCount(collector, 'stored')) >= 1, `${name}: unconfirmed crashes wait`);
    await proxy.set({ kind: 'pass' });
    // A crash the queue took but whose confirm was lost in the nonsense comes again: at least once.
    await expectAnnounced(t, queue, target, sent, 30_000, 0, acked);
    await until(`${name}: the spool is empty`, async () => (await spoolCount(collector, 'stored')) === 0, 30_000);
  }
  const text = await scrape(collector.url);
  assert.ok(metric(text, 'crashspool_publish_failures_total', { reason: 'unaccounted' }) > 0, 'entries in neither list are counted');
  assert.ok(metric(text, 'crashspool_publish_failures_total', { reason: 'malformed' }) > 0, 'replies that account for nothing are counted');
});

test('I13: amqp: a frozen broker (connection alive, no answer) holds neither SIGTERM nor spool-inspect drain past its deadline; the crashes are announced after', async (t) => {
  const { spool, target } = fresh('frozen-broker');
  const queue = later(await amqpQueue());
  const proxy = later(await TcpFaultProxy.start(Number(new URL(queueSettings().amqpUrl).port)));
  const env = { ...target.env, SPOOL_DIR: spool, SHUTDOWN_DEADLINE_SECONDS: '3', ...queue.publishEnv(proxy.port) };
  const collector = later(await CollectorProcess.start(env));
  const acked: string[] = [];
  await post(collector, 2, acked);
  await expectAnnounced(t, queue, target, acked);

  await proxy.set('freeze');
  const whileFrozen = await post(collector, 3, acked);
  await until('the three are stored', async () => (await spoolCount(collector, 'stored')) === 3, 30_000);
  const started = Date.now();
  collector.kill('SIGTERM');
  const exit = await exitWithin(collector, 10_000);
  t.diagnostic(`SIGTERM with a frozen broker: ${JSON.stringify(exit)} after ${Date.now() - started} ms`);
  assert.notEqual(exit, 'still running', 'the collector exits within its 3 s deadline and a few seconds');
  assert.equal(exit !== 'still running' && exit.code, 0);

  const drainStarted = Date.now();
  const drain = await Promise.race([inspectWith(env, 'drain', '--spool', spool, '--max-time', '3s'), sleep(15_000).then(() => undefined)]);
  t.diagnostic(`spool-inspect drain with a frozen broker: exit ${drain?.code} after ${Date.now() - drainStarted} ms`);
  assert.ok(drain, 'spool-inspect drain ends within its --max-time and a few seconds');
  assert.equal(drain.code, 1, `crashes are left and listed: ${drain.stdout}`);

  await proxy.set('pass');
  later(await CollectorProcess.start({ ...env, ...queue.publishEnv() }));
  await expectAnnounced(t, queue, target, whileFrozen, 30_000, 0, acked);
});

test('I6, I13: sqs: a crash the queue refuses alone counts attempts and is dead-lettered with its last error; list and show say why; requeue announces it', async (t) => {
  const { spool, target } = fresh('refused-alone');
  const queue: TestQueue = later(await sqsQueue());
  const proxy = later(await FaultProxy.start(queueSettings().sqsEndpoint));
  const env = { ...target.env, SPOOL_DIR: spool, DRAIN_RETRY_BASE_SECONDS: '0.1', DRAIN_RETRY_MAX_SECONDS: '0.3', DRAIN_MAX_ATTEMPTS: '3' };
  const collector = later(await CollectorProcess.start({ ...env, ...queue.publishEnv(proxy.url) }));
  const acked: string[] = [];
  const [refused] = await post(collector, 1, acked);
  await proxy.set(sqsReplies.refuse(refused!));
  const others = await post(collector, 4, acked);
  await expectAnnounced(t, queue, target, others, 30_000);
  await until('the refused crash is dead-lettered', async () => (await spoolCount(collector, 'dead')) === 1, 30_000);
  assert.equal(metric(await scrape(collector.url), 'crashspool_dead_lettered_total'), 1);

  const listed = await inspectWith({}, 'list', '--spool', spool, '--json');
  const row = (JSON.parse(listed.stdout) as { crash_id: string; state: string; attempts: number; last_error: string | null }[]).find((crash) => crash.crash_id === refused);
  t.diagnostic(`list: ${JSON.stringify(row)}`);
  assert.equal(row?.state, 'dead');
  assert.equal(row?.attempts, 3);
  assert.match(row?.last_error ?? '', /InvalidMessageContents/);
  const shown = await inspectWith({}, 'show', refused!, '--spool', spool);
  assert.match(shown.stdout, /InvalidMessageContents/);
  assert.match(shown.stdout, /not announced/i);

  await proxy.set({ kind: 'pass' });
  const requeued = await inspectWith({}, 'requeue', refused!, '--spool', spool);
  assert.equal(requeued.code, 0, requeued.stderr);
  await expectAnnounced(t, queue, target, [refused!], 40_000);
});

test('I6, I13: purging a stored crash says it was never announced and needs --unannounced', async () => {
  const { spool, target } = fresh('purge-stored');
  const proxy = later(await TcpFaultProxy.start(Number(new URL(queueSettings().amqpUrl).port)));
  await proxy.set('refuse');
  const queue = later(await amqpQueue());
  const collector = await CollectorProcess.start({ ...target.env, SPOOL_DIR: spool, ...queue.publishEnv(proxy.port), SHUTDOWN_DEADLINE_SECONDS: '1' });
  const [crashId] = await post(collector, 1, []);
  await until('it is stored', async () => (await spoolCount(collector, 'stored')) === 1, 30_000);
  collector.kill('SIGTERM');
  await collector.exited;

  const refused = await inspectWith({}, 'purge', crashId!, '--yes', '--spool', spool);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /never announced/);
  assert.match(refused.stderr, /--unannounced/);
  const purged = await inspectWith({}, 'purge', crashId!, '--yes', '--unannounced', '--spool', spool);
  assert.equal(purged.code, 0, purged.stderr);
  assert.match(purged.stderr, /crash purged by operator/);
  assert.match(purged.stderr, /"announced":false/);
});
