/**
 * I7 a crash's row identity is never reused (docs/INVARIANTS.md): row numbers come from
 * AUTOINCREMENT, and every delete or failure record names the crash by row number and crash ID.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import { newCrashId } from '../../src/crash-id.js';
import { closeInspectedSpool, openSpoolForInspection } from '../../src/spool/operator/inspection.js';
import { purgeCrash } from '../../src/spool/operator/admin.js';
import { CrashRows } from '../../src/spool/crash-rows.js';
import { closeSpoolDatabase, openSpoolDatabase, SCHEMA_VERSION, SPOOL_FILE } from '../../src/spool/schema.js';
import { SpoolReader } from '../../src/spool/runtime/reader.js';
import { SpoolStore, type WriteOp } from '../../src/spool/runtime/store.js';

const V2_SPOOL = fileURLToPath(new URL('../fixtures/spool-v2/spool.db', import.meta.url));

const append = (crashId: string): WriteOp => ({
  kind: 'append',
  crashId,
  receivedAt: Date.now(),
  rawCrashJson: '{}',
  dumpNamesJson: '["upload_file_minidump"]',
  bytes: 10,
  dumps: [{ name: 'upload_file_minidump', data: Buffer.from(crashId) }],
});

function withSpool(use: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'crashspool-rows-'));
  return Promise.resolve(use(dir)).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** A new spool with the collector's store (the writer thread's work, done in place) and the drainer's reader. */
function withStore(use: (spool: { dir: string; db: Database.Database; store: SpoolStore; reader: SpoolReader }) => void): Promise<void> {
  return withSpool((dir) => {
    const db = openSpoolDatabase(dir, { durability: 'normal', create: true });
    try {
      use({ dir, db, store: new SpoolStore(db), reader: new SpoolReader(db) });
    } finally {
      closeSpoolDatabase(db);
    }
  });
}

const rows = (reader: SpoolReader) =>
  reader.db.prepare('SELECT seq, crash_id AS crashId, state, attempts FROM crashes ORDER BY seq').all() as {
    seq: number;
    crashId: string;
    state: string;
    attempts: number;
  }[];

function purge(dir: string, crashId: string): void {
  const spool = openSpoolForInspection(dir, 'write');
  try {
    purgeCrash(spool, crashId, true, () => undefined);
  } finally {
    closeInspectedSpool(spool);
  }
}

test('I7: after the newest crash is purged, the next crash gets a number never used before', () =>
  withStore(({ dir, store, reader }) => {
    const [a, b, c] = [newCrashId(new Date()), newCrashId(new Date()), newCrashId(new Date())];
    store.apply([append(a), append(b)]);
    const seqOfB = rows(reader)[1]!.seq;
    purge(dir, b);
    store.apply([append(c)]);
    assert.ok(rows(reader)[1]!.seq > seqOfB, `C got ${rows(reader)[1]!.seq}, B had ${seqOfB}`);
  }));

test('I7: the failure and the remove of a crash purged during its upload change no other crash', () =>
  withStore(({ dir, store, reader }) => {
    const [a, b, c] = [newCrashId(new Date()), newCrashId(new Date()), newCrashId(new Date())];
    store.apply([append(a), append(b)]);
    const uploading = reader.due(Date.now(), 2, new Set())[1]!;
    assert.equal(uploading.crashId, b);
    purge(dir, b);
    store.apply([append(c)]);
    const failure = { stage: 'upload' as const, attempts: 10, nextAttemptAt: Date.now() + 60_000, error: 'rejected', dead: true };
    assert.deepEqual(store.apply([{ kind: 'failure', crash: uploading, failure }]), [{ found: false }]);
    assert.deepEqual(store.apply([{ kind: 'remove', crash: uploading }]), [{ found: false }]);
    assert.deepEqual(
      rows(reader).map(({ crashId, state, attempts }) => ({ crashId, state, attempts })),
      [a, c].map((crashId) => ({ crashId, state: 'pending', attempts: 0 })),
    );
  }));

test('I7: even a crash that holds a purged crash\'s number (a spool whose sequence was reset) is safe from that crash\'s failure and remove', () =>
  withStore(({ dir, db, store, reader }) => {
    const [b, c] = [newCrashId(new Date()), newCrashId(new Date())];
    store.apply([append(b)]);
    const uploading = reader.due(Date.now(), 1, new Set())[0]!;
    purge(dir, b);
    db.prepare("UPDATE sqlite_sequence SET seq = 0 WHERE name = 'crashes'").run();
    store.apply([append(c)]);
    assert.equal(rows(reader)[0]!.seq, uploading.seq, 'C holds B\'s number');
    const crashRows = new CrashRows(db);
    assert.equal(crashRows.recordFailure(uploading, { stage: 'upload', attempts: 1, nextAttemptAt: 0, error: 'x', dead: true }), false);
    assert.equal(crashRows.delete(uploading), false);
    assert.deepEqual(rows(reader).map((row) => [row.crashId, row.state]), [[c, 'pending']]);
    assert.equal(db.prepare('SELECT COUNT(*) FROM dumps').pluck().get(), 1, 'C keeps its dump');
  }));

test('I7: a version 2 spool is upgraded in place: same crashes and numbers, and new numbers above every one in use', () =>
  withSpool(async (dir) => {
    copyFileSync(V2_SPOOL, join(dir, SPOOL_FILE));
    const db = openSpoolDatabase(dir, { durability: 'normal', create: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      const reader = new SpoolReader(db);
      const before = rows(reader);
      assert.equal(before.length, 4);
      assert.deepEqual(before.map((row) => row.seq), [1, 2, 3, 4]);
      for (const crash of reader.due(Date.now(), 4, new Set())) assert.ok((await reader.dumps(crash))!.length > 0, crash.crashId);
      const last = before[3]!;
      purge(dir, last.crashId);
      new SpoolStore(db).apply([append(newCrashId(new Date()))]);
      assert.ok(rows(reader)[3]!.seq > last.seq, 'the purged newest number is not handed out again');
      assert.match(db.prepare("SELECT sql FROM sqlite_master WHERE name = 'crashes'").pluck().get() as string, /AUTOINCREMENT/);
      assert.deepEqual(db.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
    } finally {
      closeSpoolDatabase(db);
    }
  }));

test('I13: a crash storage confirmed becomes stored: its dumps leave, it counts its row only, it is listed for the queue; only by its identity', () =>
  withStore(({ db, store, reader }) => {
    const [a, b] = [newCrashId(new Date()), newCrashId(new Date())];
    store.apply([append(a), append(b)]);
    const [crashA] = reader.due(Date.now(), 2, new Set());
    assert.deepEqual(store.apply([{ kind: 'stored', crash: { seq: crashA!.seq, crashId: b }, storedAt: 1, bytes: 2 }]), [{ found: false }], 'a number with another crash ID');
    assert.deepEqual(store.apply([{ kind: 'stored', crash: crashA!, storedAt: 1234, bytes: 2 }]), [{ found: true }]);
    assert.deepEqual(store.apply([{ kind: 'stored', crash: crashA!, storedAt: 1234, bytes: 2 }]), [{ found: false }], 'stored already: not pending');
    assert.equal(db.prepare('SELECT COUNT(*) FROM dumps WHERE seq = ?').pluck().get(crashA!.seq), 0);
    assert.deepEqual(reader.due(Date.now(), 5, new Set()).map((crash) => crash.crashId), [b], 'a stored crash is not uploaded again');
    assert.deepEqual(reader.stored(Date.now(), 5, new Set()), [{ seq: crashA!.seq, crashId: a, bytes: 2, storedAt: 1234, attempts: 0 }]);
    assert.deepEqual(reader.stored(Date.now(), 5, new Set([crashA!.seq])), []);
    const stats = reader.stats();
    assert.deepEqual([stats.pending, stats.stored, stats.dead, stats.bytes, stats.oldestStoredAt], [1, 1, 0, 12, 1234]);
    assert.deepEqual(store.apply([{ kind: 'remove', crash: { seq: crashA!.seq, crashId: a } }]), [{ found: true }]);
    assert.equal(reader.stats().stored, 0);
  }));

test('I13: a failure record touches a crash only in the state it is of: an upload\'s a pending crash, an announcement\'s a stored one', () =>
  withStore(({ store, reader }) => {
    const [a, b] = [newCrashId(new Date()), newCrashId(new Date())];
    store.apply([append(a), append(b)]);
    const [crashA, crashB] = reader.due(Date.now(), 2, new Set());
    store.apply([{ kind: 'stored', crash: crashA!, storedAt: 1234, bytes: 2 }]);
    const failure = (stage: 'upload' | 'announce', dead = false) => ({ stage, attempts: 1, nextAttemptAt: 99, error: `${stage} failed`, dead });
    // A late upload failure of a crash storage has since confirmed would send it back to pending, dumps gone.
    assert.deepEqual(store.apply([{ kind: 'failure', crash: crashA!, failure: failure('upload', true) }]), [{ found: false }]);
    assert.deepEqual(store.apply([{ kind: 'failure', crash: crashB!, failure: failure('announce') }]), [{ found: false }], 'not stored: no announcement failed');
    assert.deepEqual(rows(reader).map(({ state, attempts }) => [state, attempts]), [['stored', 0], ['pending', 0]]);
    // An announcement the queue refused for good: dead, and still known to be in storage.
    assert.deepEqual(store.apply([{ kind: 'failure', crash: crashA!, failure: failure('announce', true) }]), [{ found: true }]);
    assert.deepEqual(reader.db.prepare('SELECT state, attempts, last_error, stored_at FROM crashes WHERE seq = ?').get(crashA!.seq), {
      state: 'dead',
      attempts: 1,
      last_error: 'announce failed',
      stored_at: 1234,
    });
    assert.deepEqual(reader.stored(Date.now(), 5, new Set()), [], 'a dead crash is not announced');
  }));

test('I13: a stored crash waits out a retry delay written on it before it is offered to the queue again', () =>
  withStore(({ store, reader }) => {
    const [a] = [newCrashId(new Date())];
    store.apply([append(a)]);
    const [crash] = reader.due(Date.now(), 1, new Set());
    store.apply([{ kind: 'stored', crash: crash!, storedAt: 1, bytes: 2 }]);
    store.apply([{ kind: 'failure', crash: crash!, failure: { stage: 'announce', attempts: 1, nextAttemptAt: 5000, error: 'refused', dead: false } }]);
    assert.deepEqual(reader.stored(4999, 5, new Set()), []);
    assert.deepEqual(reader.stored(5000, 5, new Set()).map((stored) => [stored.crashId, stored.attempts]), [[a, 1]]);
    assert.equal(reader.nextStoredDueAt(), 5000);
  }));
