/**
 * I11 nothing scheduled ends the process: the drainer's look for work runs from timers, outside
 * any request. A spool read failing there (SQLITE_BUSY behind an operator's long transaction, a
 * disk gone) is logged with its reason, counted in crashspool_background_errors_total, and the
 * drainer looks again after a pause. Real spool, real writer thread; storage stores in memory.
 */
import { test } from 'node:test';
import { BackgroundErrors } from '../../src/background-errors.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { newCrashId } from '../../src/crash-id.js';
import { Drainer } from '../../src/drain/drainer.js';
import { createMetrics } from '../../src/metrics.js';
import { closeSpoolDatabase, openSpoolDatabase } from '../../src/spool/schema.js';
import { SpoolReader } from '../../src/spool/runtime/reader.js';
import { SpoolUsage } from '../../src/spool/runtime/usage.js';
import { SpoolWriter } from '../../src/spool/runtime/writer.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { syntheticCrash as crash } from '../helpers/synthetic-crash.js';

const busy = () => Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });

/** The drainer's reader, whose due-time reads fail the first time each is made. */
class FailingOnce extends SpoolReader {
  failures = { next: 1, oldest: 1 };

  override nextDueAt(): number | undefined {
    if (this.failures.next-- > 0) throw busy();
    return super.nextDueAt();
  }

  override oldestDueAt(now: number): number | undefined {
    if (this.failures.oldest-- > 0) throw busy();
    return super.oldestDueAt(now);
  }
}


test('I11: the drainer\'s due-time reads failing once are logged and counted, and draining goes on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crashspool-schedule-'));
  const db = openSpoolDatabase(dir, { durability: 'normal', create: true });
  const reader = new FailingOnce(db);
  const usage = new SpoolUsage(0, { dir, maxBytes: 1e9, minFreeBytes: 0 });
  const writer = await SpoolWriter.start({
    dir,
    durability: 'normal',
    usage,
    reusableBytes: () => 0,
    onFatal: (error) => assert.fail(error),
    checkpoints: { everyBytes: 1 << 20, eagerBelowFreeBytes: 0 },
  });
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _encoding, done) => (lines.push(JSON.parse(String(chunk))), done()) }));
  const metrics = createMetrics();
  const storage = new MemoryStorage();
  let receiving = true;
  const drainer = new Drainer({
    spool: reader,
    writer,
    storage,
    options: { concurrency: 4, maxInflightBytes: 1e9, concurrencyWhileReceiving: 1, yieldMaxMs: 60_000, retry: { baseMs: 20, maxMs: 50 }, maxAttempts: 3 },
    logger,
    metrics,
    load: { receiving: () => receiving, spoolFillingUp: () => false },
    afterStored: { kind: 'remove' },
    errors: new BackgroundErrors(logger, metrics.backgroundErrors),
  });
  try {
    // An empty spool: the first look asks for the next due time and fails.
    drainer.start();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const ids = Array.from({ length: 5 }, () => newCrashId(new Date()));
    for (const id of ids) await writer.append(crash(id));
    // While receiving, the look at the oldest due crash fails too.
    drainer.wake();
    await new Promise((resolve) => setTimeout(resolve, 50));
    receiving = false;
    assert.ok(await drainer.untilEmpty(Date.now() + 10_000), 'every crash was uploaded after the failed reads');
    assert.ok(reader.failures.next < 0 && reader.failures.oldest < 0, 'both reads failed once and were made again');
    for (const id of ids) assert.ok(storage.objects.has(`v1/dump/${id}`), id);
    const reported = lines.filter((line) => line['task'] === 'drain_schedule');
    assert.equal(reported.length, 2, JSON.stringify(lines));
    for (const line of reported) {
      assert.equal(line['level'], 50);
      assert.match(String((line['err'] as { message: string }).message), /database is locked/);
    }
    const counted = (await metrics.backgroundErrors.get()).values.find((value) => value.labels.task === 'drain_schedule');
    assert.equal(counted?.value, 2);
  } finally {
    drainer.stop();
    await writer.close();
    closeSpoolDatabase(db);
    rmSync(dir, { recursive: true, force: true });
  }
});
