/**
 * A crash kept as its gzipped body as sent: the spool gives back each dump byte for byte, removes
 * the body with the crash, and a spool of the first schema is upgraded in place without losing a byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { newCrashId } from '../../src/crash-id.js';
import { closeSpoolDatabase, openSpoolDatabase, SCHEMA_VERSION, SPOOL_FILE } from '../../src/spool/schema.js';
import { SpoolReader } from '../../src/spool/runtime/reader.js';
import { StoredDumps } from '../../src/spool/stored-dumps.js';
import { SpoolStore, type WriteOp } from '../../src/spool/runtime/store.js';

function withSpoolDir<T>(use: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'crashspool-bodies-'));
  try {
    return use(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const first = Buffer.concat([Buffer.from('MDMP'), Buffer.alloc(30_000, 7)]);
const second = Buffer.from('MDMP second dump');
const form = Buffer.concat([Buffer.from('--b\r\nheaders\r\n\r\n'), first, Buffer.from('\r\n--b\r\n\r\n'), second, Buffer.from('\r\n--b--\r\n')]);
const firstAt = form.indexOf(first);
const secondAt = form.indexOf(second, firstAt + first.length);

function keptAsSent(crashId: string): WriteOp {
  return {
    kind: 'append',
    crashId,
    receivedAt: Date.now(),
    rawCrashJson: '{}',
    dumpNamesJson: '["upload_file_minidump","upload_file_browser"]',
    bytes: 100,
    sentGzip: gzipSync(form),
    dumps: [
      { name: 'upload_file_minidump', offset: firstAt, length: first.length },
      { name: 'upload_file_browser', offset: secondAt, length: second.length },
    ],
  };
}

const count = (db: Database.Database, table: string) => db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get() as number;

test('a crash kept as sent gives back its dumps byte for byte, to the drainer and to the ops tools; remove takes its body too', async () => {
  await withSpoolDir(async (dir) => {
    const db = openSpoolDatabase(dir, { durability: 'normal', create: true });
    try {
      const store = new SpoolStore(db);
      store.apply([keptAsSent(newCrashId(new Date()))]);
      const reader = new SpoolReader(db);
      const [crash] = reader.due(Date.now(), 1, new Set());
      const dumps = (await reader.dumps(crash!))!;
      assert.deepEqual(dumps.map((dump) => dump.name), ['upload_file_minidump', 'upload_file_browser']);
      assert.ok(dumps[0]!.data.equals(first));
      assert.ok(dumps[1]!.data.equals(second));
      const again = new StoredDumps(db).readSync(crash!)!;
      assert.ok(again[0]!.data.equals(first) && again[1]!.data.equals(second));
      assert.equal(count(db, 'bodies'), 1);
      store.apply([{ kind: 'remove', crash: crash! }]);
      assert.equal(count(db, 'bodies'), 0);
      assert.equal(count(db, 'dumps'), 0);
    } finally {
      closeSpoolDatabase(db);
    }
  });
});

test('a dump placed outside the stored body is an error, not wrong bytes', async () => {
  await withSpoolDir(async (dir) => {
    const db = openSpoolDatabase(dir, { durability: 'normal', create: true });
    try {
      const op = keptAsSent(newCrashId(new Date()));
      if (op.kind === 'append') op.dumps = [{ name: 'upload_file_minidump', offset: form.length - 2, length: 10 }];
      new SpoolStore(db).apply([op]);
      const reader = new SpoolReader(db);
      const [crash] = reader.due(Date.now(), 1, new Set());
      await assert.rejects(reader.dumps(crash!), /lies outside the body stored with its crash/);
    } finally {
      closeSpoolDatabase(db);
    }
  });
});

test('a spool of schema version 1 is upgraded in place: its crashes read as before, new ones can be kept as sent', async () => {
  await withSpoolDir(async (dir) => {
    const old = new Database(join(dir, SPOOL_FILE));
    old.pragma('journal_mode = WAL');
    old.exec(`
      CREATE TABLE crashes (seq INTEGER PRIMARY KEY, crash_id TEXT NOT NULL UNIQUE, received_at INTEGER NOT NULL,
        raw_crash TEXT NOT NULL, dump_names TEXT NOT NULL, bytes INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')), attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL DEFAULT 0, last_error TEXT);
      CREATE INDEX crashes_by_state ON crashes (state, seq);
      CREATE INDEX crashes_by_due ON crashes (state, next_attempt_at);
      CREATE TABLE dumps (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL);
      CREATE INDEX dumps_by_crash ON dumps (seq);
      PRAGMA user_version = 1;
    `);
    const oldCrash = newCrashId(new Date(Date.now() - 1000));
    const { lastInsertRowid } = old
      .prepare(`INSERT INTO crashes (crash_id, received_at, raw_crash, dump_names, bytes) VALUES (?, ?, '{}', '["upload_file_minidump"]', ?)`)
      .run(oldCrash, Date.now() - 1000, first.length);
    old.prepare('INSERT INTO dumps (seq, name, data) VALUES (?, ?, ?)').run(lastInsertRowid, 'upload_file_minidump', first);
    old.close();

    const db = openSpoolDatabase(dir, { durability: 'normal', create: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      new SpoolStore(db).apply([keptAsSent(newCrashId(new Date()))]);
      const reader = new SpoolReader(db);
      const [before, after] = reader.due(Date.now(), 2, new Set());
      assert.equal(before!.crashId, oldCrash);
      const oldDumps = (await reader.dumps(before!))!;
      assert.ok(oldDumps[0]!.data.equals(first));
      const newDumps = (await reader.dumps(after!))!;
      assert.ok(newDumps[1]!.data.equals(second));
    } finally {
      closeSpoolDatabase(db);
    }
  });
});
