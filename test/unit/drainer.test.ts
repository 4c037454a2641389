/**
 * The drainer's concurrency and failure policy, against a real spool (SQLite in a temp dir) and
 * storage fakes: one that counts how many crashes it is storing at once, one that fails a share of
 * requests. The collector-level behaviour is covered by
 * test/integration/operations.test.ts ("acks come first").
 */
import { test } from 'node:test';
import { BackgroundErrors } from '../../src/background-errors.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newCrashId } from '../../src/crash-id.js';
import { Drainer, type DrainerLoad } from '../../src/drain/drainer.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { closeSpoolDatabase, openSpoolDatabase } from '../../src/spool/schema.js';
import { DUE_SQL, SpoolReader } from '../../src/spool/runtime/reader.js';
import { SpoolStore } from '../../src/spool/runtime/store.js';
import type { DrainedCrashes } from '../../src/spool/runtime/ports.js';
import { StorageError, type CrashStorage } from '../../src/storage/storage.js';

/** Stores nothing; records the most crashes it was ever storing at once (by crash ID in the key). */
class CountingStorage implements CrashStorage {
  readonly description = 'counting fake';
  private readonly storing = new Map<string, number>();
  mostAtOnce = 0;

  async put(key: string): Promise<void> {
    const crashId = key.split('/').pop()!;
    this.storing.set(crashId, (this.storing.get(crashId) ?? 0) + 1);
    this.mostAtOnce = Math.max(this.mostAtOnce, this.storing.size);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const left = this.storing.get(crashId)! - 1;
    if (left === 0) this.storing.delete(crashId);
    else this.storing.set(crashId, left);
  }

  async checkReachable(): Promise<void> {}

  async checkReadWrite(): Promise<string> {
    return 'fake';
  }

  destroy(): void {}
}

/** Answers in 1 ms; records when each crash's first object arrived. */
class StartTimes implements CrashStorage {
  readonly description = 'start-time fake';
  readonly starts: number[] = [];
  private readonly seen = new Set<string>();

  async put(key: string): Promise<void> {
    const crashId = key.split('/').pop()!;
    if (!this.seen.has(crashId)) {
      this.seen.add(crashId);
      this.starts.push(performance.now());
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }

  async checkReachable(): Promise<void> {}

  async checkReadWrite(): Promise<string> {
    return 'fake';
  }

  destroy(): void {}
}

/** A temp spool holding 24 crashes received `receivedAgoMs` ago, and a drainer on it. */
async function withDrainer<T>(
  storage: CrashStorage,
  load: DrainerLoad,
  receivedAgoMs: number,
  retry: { baseMs: number; maxMs: number },
  use: (drainer: Drainer, reader: SpoolReader) => Promise<T>,
  maxInflightBytes = 1_000_000,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'crashspool-drainer-'));
  const db = openSpoolDatabase(dir, { durability: 'normal', create: true });
  try {
    const store = new SpoolStore(db);
    const crashIds = Array.from({ length: 24 }, () => newCrashId(new Date()));
    store.apply(
      crashIds.map((crashId) => ({
        kind: 'append' as const,
        crashId,
        receivedAt: Date.now() - receivedAgoMs,
        rawCrashJson: '{}',
        dumpNamesJson: '["upload_file_minidump"]',
        bytes: 10,
        dumps: [{ name: 'upload_file_minidump', data: Buffer.from(crashId) }],
      })),
    );
    // The writer thread's work, done in place: only its effect on the spool matters here.
    const writer: DrainedCrashes = {
      remove: async (crash) => (store.apply([{ kind: 'remove', crash }])[0] as { found: boolean }).found,
      markStored: async () => assert.fail('no publishing here'),
      recordFailure: async () => true,
    };
    const reader = new SpoolReader(db);
    const drainer = new Drainer({
      spool: reader,
      writer,
      storage,
      options: { concurrency: 6, maxInflightBytes, concurrencyWhileReceiving: 1, yieldMaxMs: 60_000, retry, maxAttempts: 3 },
      logger: createLogger('silent'),
      metrics: createMetrics(),
      load,
      afterStored: { kind: 'remove' },
      errors: new BackgroundErrors(createLogger('silent'), createMetrics().backgroundErrors),
    });
    drainer.start();
    try {
      return await use(drainer, reader);
    } finally {
      drainer.stop();
    }
  } finally {
    closeSpoolDatabase(db);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function drainWith(load: DrainerLoad, receivedAgoMs = 0, maxInflightBytes?: number): Promise<number> {
  const storage = new CountingStorage();
  return withDrainer(
    storage,
    load,
    receivedAgoMs,
    { baseMs: 10, maxMs: 10 },
    async (drainer, reader) => {
      assert.ok(await drainer.untilEmpty(Date.now() + 10_000), 'every crash was uploaded');
      assert.equal(reader.stats().pending, 0);
      return storage.mostAtOnce;
    },
    maxInflightBytes,
  );
}

test('drainer: DRAIN_CONCURRENCY crashes at a time when nothing is being received', async () => {
  assert.equal(await drainWith({ receiving: () => false, spoolFillingUp: () => false }), 6);
});

test('drainer: no more spooled bytes uploading at once than DRAIN_INFLIGHT_MAX_BYTES; a crash larger than it goes alone', async () => {
  const idle = { receiving: () => false, spoolFillingUp: () => false };
  // Every test crash counts 10 bytes.
  assert.equal(await drainWith(idle, 0, 25), 2, '25 bytes: two crashes of 10 at a time');
  assert.equal(await drainWith(idle, 0, 5), 1, '5 bytes: one at a time, and every crash still uploaded');
});

test('drainer: one crash at a time while reports are being received', async () => {
  assert.equal(await drainWith({ receiving: () => true, spoolFillingUp: () => false }), 1);
});

test('drainer: paced while receiving (busy at the fewest uploads): one start per 100 ms, however fast storage answers', async () => {
  const storage = new StartTimes();
  const paced = { receiving: () => true, uploadsWhileReceiving: () => 1, uploadsPaced: () => true, spoolFillingUp: () => false };
  await withDrainer(storage, paced, 0, { baseMs: 10, maxMs: 10 }, async () => {
    await new Promise((resolve) => setTimeout(resolve, 1000));
  });
  // Storage answers in 1 ms: unpaced, one at a time would start ~24 crashes in a second.
  assert.ok(storage.starts.length >= 8 && storage.starts.length <= 11, `${storage.starts.length} crashes started in 1 s`);
  const gaps = storage.starts.slice(1).map((at, index) => at - storage.starts[index]!);
  assert.ok(Math.min(...gaps) >= 95, `starts ${gaps.join(', ')} ms apart`);
});

test('drainer: full concurrency while receiving once the spool is filling up', async () => {
  assert.equal(await drainWith({ receiving: () => true, spoolFillingUp: () => true }), 6);
});

test('drainer: full concurrency while receiving once the oldest pending crash waited longer than the yield limit', async () => {
  assert.equal(await drainWith({ receiving: () => true, spoolFillingUp: () => false }, 61_000), 6);
});

test('spool: finding due crashes walks the pending crashes in order and stops at the limit (no sort of the whole backlog)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crashspool-plan-'));
  const db = openSpoolDatabase(dir, { durability: 'normal', create: true });
  try {
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${DUE_SQL}`).all(0, 8) as { detail: string }[]).map((row) => row.detail);
    assert.deepEqual(plan, ['SEARCH crashes USING INDEX crashes_by_state (state=?)'], JSON.stringify(plan));
  } finally {
    closeSpoolDatabase(db);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('drainer: uploads failing together in an outage take one step of backoff, not one each', async () => {
  let attempts = 0;
  const down: CrashStorage = {
    description: 'unreachable fake',
    put: async (key) => {
      // Each crash attempt sends dump_names and the dump side by side: count it once.
      if (key.startsWith('v1/dump_names/')) attempts += 1;
      throw new StorageError('connect ECONNREFUSED', 'storage', { outage: true });
    },
    checkReachable: async () => undefined,
        checkReadWrite: async () => 'fake',
    destroy: () => undefined,
  };
  const idle = { receiving: () => false, spoolFillingUp: () => false };
  await withDrainer(down, idle, 0, { baseMs: 200, maxMs: 10_000 }, async () => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
  });
  // 6 uploads fail at once; then probes after 100–200, 200–400 and 400–800 ms. Had each of the 6
  // failures stepped the backoff, the next probe would wait 3.2–6.4 s.
  assert.ok(attempts >= 8, `${attempts} attempts in 1.5 s`);
  assert.ok(attempts <= 10, `${attempts} attempts in 1.5 s: the outage is probed one upload at a time`);
});

/** Fails the requests `fails(n)` picks (n counts every put) with a 503; records each key stored. */
class FlakyStorage implements CrashStorage {
  readonly description = 'flaky fake';
  puts = 0;
  readonly stored: string[] = [];
  mostAtOnce = 0;
  private active = 0;

  constructor(private readonly fails: (n: number) => boolean) {}

  async put(key: string): Promise<void> {
    const n = this.puts++;
    this.active += 1;
    this.mostAtOnce = Math.max(this.mostAtOnce, this.active);
    await new Promise((resolve) => setTimeout(resolve, 2));
    this.active -= 1;
    if (this.fails(n)) throw new StorageError('SlowDown (HTTP 503): Please reduce your request rate.', 'storage');
    this.stored.push(key);
  }

  async checkReachable(): Promise<void> {}

  async checkReadWrite(): Promise<string> {
    return 'fake';
  }

  destroy(): void {}
}

const idle = { receiving: () => false, spoolFillingUp: () => false };

test('I3, I9: drainer: 30% of requests failing is not an outage — full concurrency, no pause, each object stored once, raw crash last', async () => {
  const storage = new FlakyStorage((n) => n % 10 < 3);
  await withDrainer(storage, idle, 0, { baseMs: 10, maxMs: 50 }, async (drainer, reader) => {
    let everPaused = false;
    const watch = setInterval(() => (everPaused ||= drainer.paused), 1);
    assert.ok(await drainer.untilEmpty(Date.now() + 10_000), 'every crash was uploaded');
    clearInterval(watch);
    assert.equal(reader.stats().pending, 0);
    assert.equal(everPaused, false, 'partial failure never paused the drainer');
    // Six crashes at once, each sending dump_names and its dump side by side.
    assert.ok(storage.mostAtOnce >= 6, `uploads ran at full concurrency (${storage.mostAtOnce} requests at once)`);
  });
  // 24 crashes × 3 objects, each stored exactly once: a retry sends only what was not confirmed.
  assert.equal(storage.stored.length, 72);
  assert.equal(new Set(storage.stored).size, 72);
  for (const key of storage.stored.filter((stored) => stored.startsWith('v1/raw_crash/'))) {
    const crashId = key.split('/').pop()!;
    const rawAt = storage.stored.indexOf(key);
    assert.ok(storage.stored.indexOf(`v1/dump_names/${crashId}`) < rawAt && storage.stored.indexOf(`v1/dump/${crashId}`) < rawAt, 'raw crash after its other objects');
  }
});

test('drainer: nearly every request failing pauses it; the first success resumes full concurrency', async () => {
  let healed = false;
  const storage = new FlakyStorage(() => !healed);
  await withDrainer(storage, idle, 0, { baseMs: 20, maxMs: 100 }, async (drainer, reader) => {
    const deadline = Date.now() + 5_000;
    while (!drainer.paused && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(drainer.paused, 'paused once nearly every recent upload failed');
    assert.equal(drainer.concurrencyLimit, 1, 'probing one upload at a time');
    healed = true;
    assert.ok(await drainer.untilEmpty(Date.now() + 10_000), 'every crash was uploaded after healing');
    assert.equal(drainer.paused, false);
    assert.equal(reader.stats().pending, 0);
  });
});
