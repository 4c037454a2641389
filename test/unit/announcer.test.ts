/**
 * The announcer against a scripted queue, on a real spool (writer thread, reader connection):
 * whatever the queue answers, nothing leaves the spool unannounced (I13) and nothing it says ends
 * the process (I11); a crash the queue refuses as its own fault gets the upload rules (I6).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackgroundErrors } from '../../src/background-errors.js';
import { newCrashId } from '../../src/crash-id.js';
import { Announcer } from '../../src/drain/announcer.js';
import { Drainer } from '../../src/drain/drainer.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { PublishError, type CrashPublisher, type PublishResult } from '../../src/queue/publisher.js';
import { closeSpoolDatabase, openSpoolDatabase } from '../../src/spool/schema.js';
import { SpoolReader } from '../../src/spool/runtime/reader.js';
import { SpoolUsage } from '../../src/spool/runtime/usage.js';
import { SpoolWriter } from '../../src/spool/runtime/writer.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { syntheticCrash as crash } from '../helpers/synthetic-crash.js';

/** A queue whose every answer the test writes. */
class ScriptedQueue implements CrashPublisher {
  readonly description = 'scripted';
  readonly batchSize = 10;
  calls = 0;
  /** Crash IDs it confirmed, in order, repeats included. */
  readonly taken: string[] = [];
  constructor(public answer: (crashIds: readonly string[]) => PublishResult) {}
  async publish(crashIds: readonly string[]): Promise<PublishResult> {
    this.calls += 1;
    const result = this.answer(crashIds);
    this.taken.push(...result.published.filter((crashId) => crashIds.includes(crashId)));
    return result;
  }
  async checkReachable(): Promise<void> {}
  async close(): Promise<void> {}
}

const takeAll = (crashIds: readonly string[]): PublishResult => ({ published: [...crashIds], failed: [], unknown: [] });


interface Rig {
  queue: ScriptedQueue;
  announcer: Announcer;
  reader: SpoolReader;
  metrics: Metrics;
  ids: string[];
  state(crashId: string): { state: string; attempts: number; last_error: string | null } | undefined;
  counted(reason: string): Promise<number>;
}

async function withAnnouncer(ids: string[], queue: ScriptedQueue, body: (rig: Rig) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'crashspool-announcer-'));
  const db = openSpoolDatabase(dir, { durability: 'normal', create: true });
  const reader = new SpoolReader(db);
  const usage = new SpoolUsage(0, { dir, maxBytes: 1e9, minFreeBytes: 0 });
  const writer = await SpoolWriter.start({ dir, durability: 'normal', usage, reusableBytes: () => 0, onFatal: (error) => assert.fail(error), checkpoints: { everyBytes: 1 << 20, eagerBelowFreeBytes: 0 } });
  const logger = createLogger('silent');
  const metrics = createMetrics();
  const errors = new BackgroundErrors(logger, metrics.backgroundErrors);
  const retry = { baseMs: 10, maxMs: 40 };
  const announcer = new Announcer({ spool: reader, writer, publisher: queue, options: { concurrency: 2, retry, maxAttempts: 3 }, logger, metrics, errors });
  const drainer = new Drainer({
    spool: reader,
    writer,
    storage: new MemoryStorage(),
    options: { concurrency: 4, maxInflightBytes: 1e9, concurrencyWhileReceiving: 4, yieldMaxMs: 0, retry, maxAttempts: 3 },
    logger,
    metrics,
    errors,
    afterStored: { kind: 'announce', announcer },
  });
  for (const id of ids) await writer.append(crash(id));
  try {
    drainer.start();
    announcer.start();
    assert.ok(await drainer.untilEmpty(Date.now() + 10_000), 'every crash reached storage');
    await body({
      queue,
      announcer,
      reader,
      metrics,
      ids,
      state: (crashId) => db.prepare('SELECT state, attempts, last_error FROM crashes WHERE crash_id = ?').get(crashId) as ReturnType<Rig['state']>,
      counted: async (reason) => (await metrics.publishFailures.get()).values.find((value) => value.labels.reason === reason)?.value ?? 0,
    });
    assert.equal((await metrics.backgroundErrors.get()).values.reduce((sum, value) => sum + value.value, 0), 0, 'nothing threw where nothing should');
  } finally {
    drainer.stop();
    announcer.stop();
    await writer.close();
    closeSpoolDatabase(db);
    rmSync(dir, { recursive: true, force: true });
  }
}

const crashIds = (count: number) => Array.from({ length: count }, () => newCrashId(new Date()));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('I6, I13: a crash the queue refuses as its own fault counts attempts and is dead-lettered, kept, never deleted; the others are announced', async () => {
  const ids = crashIds(4);
  const refused = ids[2]!;
  const queue = new ScriptedQueue((sent) => ({
    published: sent.filter((crashId) => crashId !== refused),
    failed: sent.filter((crashId) => crashId === refused).map((crashId) => ({ crashId, error: 'InvalidMessageContents: no', reason: 'rejected', scope: 'crash' })),
    unknown: [],
  }));
  await withAnnouncer(ids, queue, async (rig) => {
    await waitFor(() => rig.state(refused)?.state === 'dead' && rig.reader.stats().stored === 0, 'the refused crash is dead-lettered, the others announced');
    assert.deepEqual(rig.state(refused), { state: 'dead', attempts: 3, last_error: 'InvalidMessageContents: no' });
    assert.deepEqual(new Set(queue.taken), new Set(rig.ids.filter((id) => id !== refused)));
    assert.equal(await rig.counted('rejected'), 3);
    assert.equal((await rig.metrics.deadLettered.get()).values[0]?.value, 1);
  });
});

test('I13: every message returned as unroutable, or answered with entries never sent, or nothing: the announcer pauses, counts no attempt against a crash, deletes nothing; then announces all', async () => {
  for (const [name, broken, reason] of [
    ['unroutable', (crashIds: readonly string[]) => ({ published: [], failed: crashIds.map((crashId) => ({ crashId, error: 'returned', reason: 'unroutable' as const, scope: 'queue' as const })), unknown: [] }), 'unroutable'],
    ['unknown entries', (crashIds: readonly string[]) => ({ published: crashIds.map((crashId) => `${crashId}x`), failed: [], unknown: ['99'] }), 'malformed'],
    ['nothing', () => ({ published: [], failed: [], unknown: [] }), 'malformed'],
  ] as const) {
    const queue = new ScriptedQueue(broken);
    await withAnnouncer(crashIds(6), queue, async (rig) => {
      await waitFor(() => queue.calls >= 3, `${name}: the queue is tried again`);
      assert.ok(rig.announcer.paused, `${name}: paused`);
      assert.equal(rig.reader.stats().stored, 6, `${name}: every crash waits`);
      for (const id of rig.ids) assert.equal(rig.state(id)?.attempts, 0, `${name}: no attempt counted against ${id}`);
      assert.ok((await rig.counted(reason)) > 0, `${name}: counted as ${reason}`);
      const callsBefore = queue.calls;
      await sleep(300);
      // The pause grows to DRAIN_RETRY_MAX (40 ms here) at most: 300 ms hold ~8 probes; a hot loop holds hundreds.
      assert.ok(queue.calls - callsBefore <= 17, `${name}: probed with a growing pause, not hammered (${queue.calls - callsBefore} calls in 300 ms)`);
      queue.answer = takeAll;
      assert.ok(await rig.announcer.untilEmpty(Date.now() + 10_000), `${name}: all announced once the queue answers`);
      assert.deepEqual(new Set(queue.taken), new Set(rig.ids));
      assert.equal(rig.announcer.paused, false);
    });
  }
});

test('I11: a queue client that throws something other than a PublishError, or a PublishError, pauses the announcer; nothing escapes', async () => {
  for (const thrown of [new TypeError("Cannot read properties of undefined (reading 'seq')"), new PublishError('down', 'refused')]) {
    const queue = new ScriptedQueue(() => {
      throw thrown;
    });
    await withAnnouncer(crashIds(3), queue, async (rig) => {
      await waitFor(() => queue.calls >= 2, 'tried again');
      assert.ok(rig.announcer.paused);
      assert.equal(rig.reader.stats().stored, 3);
      queue.answer = takeAll;
      assert.ok(await rig.announcer.untilEmpty(Date.now() + 10_000));
    });
  }
});

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out: ${what}`);
    await sleep(10);
  }
}

test('crashes that become stored one after another while the queue is idle wait for each other (BATCH_LINGER_MS) and go in one call, not a call each', async () => {
  const queue = new ScriptedQueue(takeAll);
  await withAnnouncer(crashIds(9), queue, async (rig) => {
    assert.ok(await rig.announcer.untilEmpty(Date.now() + 10_000));
    assert.deepEqual(new Set(queue.taken), new Set(rig.ids));
    // Stored within a few ms of each other (memory storage), they fit one batch of 10; without the
    // wait the first went alone as soon as it was stored.
    assert.ok(queue.calls <= 2, `${queue.calls} calls for 9 crashes`);
  });
});
