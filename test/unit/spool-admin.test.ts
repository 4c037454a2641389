import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { newCrashId } from '../../src/crash-id.js';
import { formatDuration, parseDuration } from '../../src/duration.js';
import { attemptsHistogram, errorKind, exportCrash, groupErrors, listCrashes, normalizeCrashId, showCrash, spoolSummary } from '../../src/spool/operator/queries.js';
import { CrashRows } from '../../src/spool/crash-rows.js';
import { closeInspectedSpool, CrashNotFound, openSpoolForInspection, SpoolUnusable } from '../../src/spool/operator/inspection.js';
import { purgeAllDead, purgeCrash, requeueAllDead, requeueCrash, type PurgedCrash } from '../../src/spool/operator/admin.js';
import { closeSpoolDatabase, openSpoolDatabase } from '../../src/spool/schema.js';

test('parseDuration reads <number><unit> with s, m, h, d (and ms, w)', () => {
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('15m'), 15 * 60_000);
  assert.equal(parseDuration('2h'), 2 * 3_600_000);
  assert.equal(parseDuration('7d'), 7 * 86_400_000);
  assert.equal(parseDuration('1w'), 7 * 86_400_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('1.5h'), 90 * 60_000);
  assert.equal(parseDuration(' 0s '), 0);
});

test('parseDuration rejects anything else with an example in the message', () => {
  for (const raw of ['', '30', 's', '-5m', '5 m', '5x', '1h30m', 'PT5M', '1e3s']) {
    assert.throws(() => parseDuration(raw), /expected a duration such as 30s, 15m, 2h or 7d/, raw);
  }
  assert.throws(() => parseDuration('99999999999999999d'), /out of range/);
});

test('formatDuration gives the two largest units', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(-5000), '0s');
  assert.equal(formatDuration(45_900), '45s');
  assert.equal(formatDuration(12 * 60_000 + 5000), '12m 5s');
  assert.equal(formatDuration(15 * 60_000), '15m');
  assert.equal(formatDuration(3 * 3_600_000 + 20 * 60_000 + 7000), '3h 20m');
  assert.equal(formatDuration(4 * 86_400_000 + 2 * 3_600_000 + 1), '4d 2h');
  assert.equal(formatDuration(7 * 86_400_000), '7d');
});

test('attemptsHistogram merges states into one row per attempts value, ascending', () => {
  assert.deepEqual(attemptsHistogram([]), []);
  assert.deepEqual(
    attemptsHistogram([
      { attempts: 10, state: 'dead', crashes: 4 },
      { attempts: 0, state: 'pending', crashes: 100 },
      { attempts: 3, state: 'pending', crashes: 2 },
      { attempts: 10, state: 'pending', crashes: 1 },
    ]),
    [
      { attempts: 0, pending: 100, dead: 0 },
      { attempts: 3, pending: 2, dead: 0 },
      { attempts: 10, pending: 1, dead: 4 },
    ],
  );
});

test('errorKind drops the crash ID and raw crash date from storage errors', () => {
  assert.equal(
    errorKind('PUT p/v1/dump/47c37505-263e-4c31-abe8-20c390261125: EntityTooLarge (HTTP 400): UnknownError'),
    'PUT p/v1/dump/<crash_id>: EntityTooLarge (HTTP 400): UnknownError',
  );
  assert.equal(
    errorKind('PUT v1/raw_crash/20261125/47c37505-263e-4c31-abe8-20c390261125: AccessDenied'),
    'PUT v1/raw_crash/<date>/<crash_id>: AccessDenied',
  );
  assert.equal(errorKind('ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9'), 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9');
});

test('groupErrors counts per error kind, most crashes first, keeping the newest crash', () => {
  const a = '11111111-1111-4111-8111-111111261125';
  const b = '22222222-2222-4222-8222-222222261125';
  const groups = groupErrors([
    { error: 'other', state: 'pending', crashes: 1, latestReceivedAt: 50, latestCrashId: b },
    { error: `PUT v1/dump/${a}: too large`, state: 'dead', crashes: 1, latestReceivedAt: 10, latestCrashId: a },
    { error: `PUT v1/dump/${b}: too large`, state: 'dead', crashes: 1, latestReceivedAt: 20, latestCrashId: b },
    { error: `PUT v1/dump/${b}: too large`, state: 'pending', crashes: 1, latestReceivedAt: 5, latestCrashId: b },
  ]);
  assert.deepEqual(groups, [
    { error: 'PUT v1/dump/<crash_id>: too large', crashes: 3, pending: 1, dead: 2, latestReceivedAt: 20, latestCrashId: b },
    { error: 'other', crashes: 1, pending: 1, dead: 0, latestReceivedAt: 50, latestCrashId: b },
  ]);
});

test('normalizeCrashId accepts the bp- prefix the collector answers with', () => {
  assert.equal(normalizeCrashId('bp-47c37505-263e-4c31-abe8-20c390261125'), '47c37505-263e-4c31-abe8-20c390261125');
  assert.equal(normalizeCrashId(' 47C37505-263E-4C31-ABE8-20C390261125\n'), '47c37505-263e-4c31-abe8-20c390261125');
});

// ---- on a real spool file -------------------------------------------------------------------

const tempDirs: string[] = [];
function tempSpoolDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'crashspool-admin-'));
  tempDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

interface TestCrash {
  crashId: string;
  receivedAt: number;
  dumps: Record<string, Buffer>;
}

function crash(receivedAt: number, dumps: Record<string, Buffer>): TestCrash {
  return { crashId: newCrashId(new Date(receivedAt)), receivedAt, dumps };
}

/**
 * A spool (schema from openSpoolDatabase) with 4 crashes, oldest first, written with plain SQL:
 * the 2nd and 4th dead after 3 failures, the 3rd pending after 1.
 */
function makeSpool(dir: string): TestCrash[] {
  const db = openSpoolDatabase(dir, { durability: 'normal', create: true });
  const now = Date.now();
  const crashes = [
    crash(now - 3 * 86_400_000, { upload_file_minidump: Buffer.from('MDMP one') }),
    crash(now - 2 * 3_600_000, { upload_file_minidump: Buffer.from('MDMP two'), upload_file_minidump_browser: Buffer.from('b') }),
    crash(now - 60_000, { upload_file_minidump: Buffer.from('MDMP three') }),
    crash(now - 1000, { upload_file_minidump: Buffer.from('MDMP four') }),
  ];
  const failures: ({ state: 'pending' | 'dead'; attempts: number; error: (id: string) => string } | undefined)[] = [
    undefined,
    { state: 'dead', attempts: 3, error: (id) => `PUT v1/dump/${id}: too large` },
    { state: 'pending', attempts: 1, error: () => 'ECONNRESET' },
    { state: 'dead', attempts: 3, error: (id) => `PUT v1/dump/${id}: too large` },
  ];
  const insertCrash = db.prepare(
    `INSERT INTO crashes (crash_id, received_at, raw_crash, dump_names, bytes, state, attempts, next_attempt_at, last_error)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertDump = db.prepare('INSERT INTO dumps (seq, name, data) VALUES (?, ?, ?)');
  crashes.forEach((each, index) => {
    const raw = JSON.stringify({ uuid: each.crashId, submitted_timestamp: new Date(each.receivedAt).toISOString(), version: 2 });
    const bytes = Object.values(each.dumps).reduce((sum, data) => sum + data.length, Buffer.byteLength(raw));
    const failure = failures[index];
    const { lastInsertRowid } = insertCrash.run(
      each.crashId,
      each.receivedAt,
      raw,
      JSON.stringify(Object.keys(each.dumps)),
      bytes,
      failure?.state ?? 'pending',
      failure?.attempts ?? 0,
      failure ? now + 1000 : 0,
      failure ? failure.error(each.crashId) : null,
    );
    for (const [name, data] of Object.entries(each.dumps)) insertDump.run(lastInsertRowid, name, data);
  });
  closeSpoolDatabase(db);
  return crashes;
}

test('reading a spool: summary, list filters and order, show', () => {
  const dir = tempSpoolDir();
  const crashes = makeSpool(dir);
  const ids = crashes.map((each) => each.crashId);
  const spool = openSpoolForInspection(dir, 'read');
  try {
    assert.equal(spool.fallback, false);
    const summary = spoolSummary(spool);
    assert.deepEqual([summary.pending, summary.dead], [2, 2]);
    assert.equal(summary.oldestReceivedAt, crashes[0]!.receivedAt);
    assert.equal(summary.newestReceivedAt, crashes[3]!.receivedAt);
    assert.equal(summary.oldestPendingAt, crashes[0]!.receivedAt);
    assert.deepEqual(summary.attempts, [
      { attempts: 0, pending: 1, dead: 0 },
      { attempts: 1, pending: 1, dead: 0 },
      { attempts: 3, pending: 0, dead: 2 },
    ]);
    assert.deepEqual(
      summary.errors.map((group) => [group.error, group.crashes, group.latestCrashId]),
      [
        ['PUT v1/dump/<crash_id>: too large', 2, ids[3]],
        ['ECONNRESET', 1, ids[2]],
      ],
    );

    const listed = (options: Parameters<typeof listCrashes>[1]) => listCrashes(spool, options).map((each) => each.crashId);
    assert.deepEqual(listed({}), [...ids].reverse());
    assert.deepEqual(listed({ oldestFirst: true }), ids);
    assert.deepEqual(listed({ state: 'dead' }), [ids[3], ids[1]]);
    assert.deepEqual(listed({ limit: 1, oldestFirst: true, state: 'pending' }), [ids[0]]);
    assert.deepEqual(listed({ receivedBefore: Date.now() - parseDuration('1h') }), [ids[1], ids[0]]);
    assert.deepEqual(listed({ receivedBefore: Date.now() - parseDuration('7d') }), []);

    const shown = showCrash(spool, ids[1]!);
    assert.equal(shown.crash.state, 'dead');
    assert.equal(shown.crash.attempts, 3);
    assert.deepEqual(
      shown.dumps.map((dump) => [dump.name, dump.bytes]),
      [
        ['upload_file_minidump', 8],
        ['upload_file_minidump_browser', 1],
      ],
    );
    assert.throws(() => showCrash(spool, '00000000-0000-4000-8000-000000261125'), CrashNotFound);
  } finally {
    closeInspectedSpool(spool);
  }
});

test('export of a crash in storage writes its raw crash and names the dumps that left the spool (found by the campaign)', () => {
  const dir = tempSpoolDir();
  const crashes = makeSpool(dir);
  const spool = openSpoolForInspection(dir, 'write');
  try {
    const pending = crashes[0]!;
    const exported = exportCrash(spool, pending.crashId, join(dir, 'pending-export'));
    assert.deepEqual(readdirSync(join(dir, 'pending-export')).sort(), ['raw_crash.json', 'upload_file_minidump.dmp']);
    assert.deepEqual(exported.dumpsInStorage, []);

    const stored = crashes[1]!; // dead in this spool: back to pending, then stored, as a drainer would
    const { seq } = spool.db.prepare('SELECT seq FROM crashes WHERE crash_id = ?').get(stored.crashId) as { seq: number };
    spool.db.prepare(`UPDATE crashes SET state = 'pending' WHERE seq = ?`).run(seq);
    assert.ok(new CrashRows(spool.db).markStored({ seq, crashId: stored.crashId }, Date.now(), 100));
    const storedExport = exportCrash(spool, stored.crashId, join(dir, 'stored-export'));
    assert.deepEqual(readdirSync(join(dir, 'stored-export')), ['raw_crash.json']);
    assert.deepEqual(storedExport.files.map((file) => file.path), [join(dir, 'stored-export', 'raw_crash.json')]);
    assert.deepEqual(storedExport.dumpsInStorage, ['upload_file_minidump', 'upload_file_minidump_browser']);
  } finally {
    closeInspectedSpool(spool);
  }
});

test('requeue and purge on a spool', () => {
  const dir = tempSpoolDir();
  const ids = makeSpool(dir).map((each) => each.crashId);
  const spool = openSpoolForInspection(dir, 'write');
  try {
    assert.deepEqual(requeueCrash(spool, ids[1]!), { requeued: [ids[1]], alreadyPending: [] });
    assert.deepEqual(requeueCrash(spool, ids[1]!), { requeued: [], alreadyPending: [ids[1]] });
    const requeued = showCrash(spool, ids[1]!).crash;
    assert.deepEqual([requeued.state, requeued.attempts, requeued.nextAttemptAt], ['pending', 0, 0]);
    assert.match(requeued.lastError!, /too large/);
    assert.throws(() => requeueCrash(spool, '00000000-0000-4000-8000-000000261125'), CrashNotFound);

    const logged: PurgedCrash[] = [];
    assert.deepEqual(
      purgeAllDead(spool, false, (each) => logged.push(each)).map((each) => each.crashId),
      [ids[3]],
    );
    assert.deepEqual(
      logged.map((each) => [each.crashId, each.state]),
      [[ids[3], 'dead']],
    );
    purgeCrash(spool, ids[0]!, false, (each) => logged.push(each));
    assert.equal(logged.length, 2);
    assert.throws(() => purgeCrash(spool, ids[0]!, false, () => assert.fail('nothing purged')), CrashNotFound);
    assert.equal((spool.db.prepare('SELECT COUNT(*) AS n FROM dumps').get() as { n: number }).n, 3, 'their dumps went with them');

    // Batches: every dead crash is requeued however many batches it takes.
    spool.db.prepare(`UPDATE crashes SET state = 'dead'`).run();
    assert.equal(requeueAllDead(spool, 1).requeued.length, 2);
    assert.deepEqual(listCrashes(spool, { state: 'dead' }), []);
  } finally {
    closeInspectedSpool(spool);
  }
});

test('opening never creates a spool and names what is wrong', () => {
  const parent = tempSpoolDir();
  const missing = join(parent, 'spool');
  for (const mode of ['read', 'write'] as const) {
    assert.throws(() => openSpoolForInspection(missing, mode), (error: Error) => error instanceof SpoolUnusable && /no spool directory/.test(error.message));
    assert.throws(() => openSpoolForInspection(parent, mode), /no spool at .*spool\.db/);
  }
  assert.equal(existsSync(missing), false);
  assert.deepEqual(readdirSync(parent), []);

  writeFileSync(join(parent, 'spool.db'), Buffer.alloc(8192, 0x41));
  assert.throws(() => openSpoolForInspection(parent, 'read'), /file is not a database/);

  const foreign = tempSpoolDir();
  const other = new Database(join(foreign, 'spool.db'));
  other.exec('CREATE TABLE t (x)');
  other.close();
  assert.throws(() => openSpoolForInspection(foreign, 'read'), /not a crashspool spool .*schema version 0/);
});
