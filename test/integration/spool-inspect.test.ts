/**
 * scripts/spool-inspect, run as an operator runs it (the bash wrapper, a real child process), on
 * spools filled by a real collector: dead-letter crashes rejected by the local Ceph RGW (9 MiB
 * dumps, over its 8 MiB rgw_max_put_size) and pending crashes spooled while storage was
 * unreachable. Also alongside a running collector under load.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport } from '../helpers/http-client.js';
import { makeReport, type Report } from '../helpers/multipart.js';
import { s3Target } from '../helpers/stored-crashes.js';
import { inspect, inspectWith, type Run } from '../helpers/spool-inspect-cli.js';

const UNREACHABLE = { S3_ENDPOINT: 'http://127.0.0.1:9' };
const DEAD_LETTERED = 'crash dead-lettered; kept in the spool';

/** Runs and asserts exit 0; returns stdout. */
async function ok(...args: string[]): Promise<string> {
  const run = await inspect(...args);
  assert.equal(run.code, 0, `spool-inspect ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return run.stdout;
}

async function okJson<T>(...args: string[]): Promise<T> {
  return JSON.parse(await ok(...args, '--json')) as T;
}

/** A usage or spool error: exit `code`, exactly one line on stderr matching `pattern`, no stack trace. */
async function fails(code: number, pattern: RegExp, ...args: string[]): Promise<void> {
  const run = await inspect(...args);
  assert.equal(run.code, code, `spool-inspect ${args.join(' ')}: exit ${run.code}, stderr ${run.stderr}`);
  assert.match(run.stderr, pattern);
  assert.equal(run.stderr.trimEnd().split('\n').length, 1, `one line on stderr: ${run.stderr}`);
  assert.doesNotMatch(run.stderr, /\n\s+at /);
  assert.match(run.stderr, /^spool-inspect: /);
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

interface Summary {
  spool: string;
  pending: number;
  dead: number;
  bytes: number;
  oldest_received_at: string | null;
  oldest_age_seconds: number | null;
  newest_received_at: string | null;
  newest_age_seconds: number | null;
  oldest_pending_received_at: string | null;
  oldest_pending_age_seconds: number | null;
  attempts: { attempts: number; pending: number; dead: number }[];
  errors: { error: string; crashes: number; pending: number; dead: number; latest_received_at: string; latest_crash_id: string }[];
  database_bytes: number;
  wal_bytes: number;
  free_bytes: number;
  integrity: { checked: boolean; ok: boolean | null; findings: string[] };
  read_only: boolean;
}

interface Listed {
  crash_id: string;
  state: 'pending' | 'dead';
  received_at: string;
  bytes: number;
  dumps: string[];
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
}

interface ShowJson extends Omit<Listed, 'dumps'> {
  dumps: { name: string; bytes: number; sha256: string }[];
  raw_crash: Record<string, unknown> & { uuid: string; metadata: { dump_checksums: Record<string, string> } };
}

/** The shared spool: 2 dead-letter crashes, then 3 pending ones (posting order = spool order). */
const fixture = {
  dir: '',
  dead: [] as string[],
  pending: [] as string[],
  reports: new Map<string, Report>(),
};

/** Every temporary directory this file makes, removed at the end (the fixture spool copies are ~19 MB each). */
const scratchDirs: string[] = [];
function scratch(name: string): string {
  const dir = tempDir(name);
  scratchDirs.push(dir);
  return dir;
}

/** A private copy of the fixture spool for a test that changes it. */
function copySpool(): string {
  const dir = scratch('inspect-copy');
  cpSync(fixture.dir, dir, { recursive: true });
  return dir;
}

before(async () => {
  fixture.dir = scratch('inspect-spool');
  const s3 = s3Target('inspect');
  const rejecting = await CollectorProcess.start({
    SPOOL_DIR: fixture.dir,
    ...s3.env,
    DRAIN_MAX_ATTEMPTS: '2',
    DRAIN_RETRY_BASE_SECONDS: '0.05',
    DRAIN_RETRY_MAX_SECONDS: '0.1',
  });
  try {
    for (let i = 0; i < 2; i += 1) {
      // scripts/local-s3 sets rgw_max_put_size to 8 MiB: RGW answers 400 EntityTooLarge.
      const huge = Buffer.concat([Buffer.from('MDMP'), randomBytes(9 * 1024 * 1024)]);
      const report = makeReport('breakpad', huge);
      const crashId = crashIdFrom(await postReport(rejecting.url, report));
      await rejecting.waitForLog((line) => line.msg === DEAD_LETTERED && line['crash_id'] === crashId, 60_000);
      fixture.dead.push(crashId);
      fixture.reports.set(crashId, report);
    }
  } finally {
    await rejecting.stop();
  }

  const offline = await CollectorProcess.start({ SPOOL_DIR: fixture.dir, ...s3.env, ...UNREACHABLE });
  try {
    const dumps = [...loadFixtureDumps().values()];
    const pending = [makeReport('mozilla', dumps[0]!, dumps[1]!), makeReport('breakpad', dumps[2]!), makeReport('crashpad', dumps[3]!)];
    for (const report of pending) {
      const crashId = crashIdFrom(await postReport(offline.url, report));
      fixture.pending.push(crashId);
      fixture.reports.set(crashId, report);
    }
    // The drainer met the refused connection and wrote it on the crash it tried (attempts unchanged).
    await offline.waitForLog((line) => line.msg === 'storage unavailable; draining paused');
    await new Promise((resolve) => setTimeout(resolve, 300));
  } finally {
    await offline.stop();
  }
});

after(() => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

test('summary: counts, ages, attempts histogram, errors, file sizes, integrity (human and --json)', async () => {
  const human = await ok('summary', '--spool', fixture.dir);
  assert.match(human, /^pending\s+3 crashes$/m);
  assert.match(human, /^dead-letter\s+2 crashes$/m);
  assert.match(human, /^total size\s+\d+\.\d MiB \(\d+ bytes\)$/m);
  assert.match(human, /^oldest\s+\d+[smhd].* ago \(\d{4}-\d\d-\d\dT[\d:.]+Z\)$/m);
  assert.match(human, /^database file\s+\d/m);
  assert.match(human, /^WAL file\s+\d/m);
  assert.match(human, /^integrity\s+ok \(quick_check\)$/m);
  assert.match(human, /^ATTEMPTS\s+PENDING\s+DEAD$/m);
  assert.match(human, /^\s+0\s+3\s+0$/m, 'three pending crashes never failed on their own');
  assert.match(human, /^\s+2\s+0\s+2$/m, 'two dead crashes after 2 attempts');
  assert.match(human, /^last errors \([12] distinct\)$/m);
  assert.match(human, new RegExp(`^\\s+2\\s+0\\s+2\\s+${fixture.dead[1]}\\s+PUT \\S+/<crash_id>: EntityTooLarge`, 'm'));

  const summary = await okJson<Summary>('summary', '--spool', fixture.dir);
  assert.equal(summary.spool, fixture.dir);
  assert.equal(summary.pending, 3);
  assert.equal(summary.dead, 2);
  assert.ok(summary.bytes > 18 * 1024 * 1024, `bytes ${summary.bytes}`);
  assert.deepEqual(summary.attempts, [
    { attempts: 0, pending: 3, dead: 0 },
    { attempts: 2, pending: 0, dead: 2 },
  ]);
  // Each error names its object key; grouping replaces the crash ID, so both dead crashes share one error.
  const group = summary.errors.find((one) => /EntityTooLarge/.test(one.error))!;
  assert.match(group.error, /^PUT \S+\/v1\/dump\/<crash_id>: EntityTooLarge \(HTTP 400\)/);
  // The storage outage the offline collector met is on the crash it tried: a last error, no attempt counted.
  const refused = summary.errors.filter((one) => /ECONNREFUSED/.test(one.error));
  assert.ok(refused.length >= 1 && refused.every((one) => one.dead === 0 && one.pending >= 1), JSON.stringify(summary.errors));
  assert.equal(summary.errors.length, 1 + refused.length, JSON.stringify(summary.errors));
  assert.deepEqual([group.crashes, group.pending, group.dead], [2, 0, 2]);
  assert.equal(group.latest_crash_id, fixture.dead[1]);
  assert.ok(summary.oldest_age_seconds! >= summary.newest_age_seconds!);
  assert.ok(Date.parse(summary.oldest_received_at!) <= Date.parse(summary.oldest_pending_received_at!));
  assert.ok(summary.database_bytes > 0);
  assert.equal(typeof summary.wal_bytes, 'number');
  assert.equal(typeof summary.free_bytes, 'number');
  assert.deepEqual(summary.integrity, { checked: true, ok: true, findings: ['ok'] });
  assert.equal(summary.read_only, true);

  const unchecked = await okJson<Summary>('summary', '--no-check', '--spool', fixture.dir);
  assert.deepEqual(unchecked.integrity, { checked: false, ok: null, findings: [] });

  // summary is the default command; options may come before the command.
  assert.equal((await okJson<Summary>('--spool', fixture.dir)).pending, 3);
  assert.equal((await okJson<Summary>('--spool', fixture.dir, 'summary')).dead, 2);
});

test('list: newest first, one crash per line; --state, --limit, --oldest-first, --older-than (human and --json)', async () => {
  const everything = [...fixture.dead, ...fixture.pending];
  const human = (await ok('list', '--spool', fixture.dir)).trimEnd().split('\n');
  assert.match(human[0]!, /^CRASH ID\s+STATE\s+RECEIVED\s+SIZE\s+DUMPS\s+ATTEMPTS\s+LAST ERROR$/);
  assert.deepEqual(
    human.slice(1).map((line) => line.split(/\s+/)[0]),
    [...everything].reverse(),
  );
  const deadLine = human.find((line) => line.startsWith(fixture.dead[0]!))!;
  assert.match(deadLine, /^\S+\s+dead\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+9\.0 MiB\s+1\s+2\s+.*EntityTooLarge/);
  const mozillaLine = human.find((line) => line.startsWith(fixture.pending[0]!))!;
  // The oldest pending crash is the one the offline collector tried: the refused connection is its last error, with 0 attempts.
  assert.match(mozillaLine, /^\S+\s+pending\s+\S+Z\s+[\d.]+ KiB\s+2\s+0\s+.*ECONNREFUSED/);

  const listed = await okJson<Listed[]>('list', '--spool', fixture.dir);
  assert.deepEqual(
    listed.map((crash) => crash.crash_id),
    [...everything].reverse(),
  );
  const mozilla = listed.find((crash) => crash.crash_id === fixture.pending[0])!;
  assert.deepEqual(Object.keys(mozilla).sort(), ['attempts', 'bytes', 'crash_id', 'due_now', 'dumps', 'last_error', 'next_attempt_at', 'received_at', 'state', 'stored_at']);
  assert.deepEqual(mozilla.dumps, ['upload_file_minidump', 'upload_file_minidump_browser']);
  assert.equal(mozilla.state, 'pending');
  assert.equal(mozilla.attempts, 0);
  assert.match(mozilla.last_error!, /ECONNREFUSED/);
  assert.ok(Math.abs(Date.parse(mozilla.received_at) - Date.now()) < 10 * 60_000);
  const dead = listed.find((crash) => crash.crash_id === fixture.dead[1])!;
  assert.equal(dead.state, 'dead');
  assert.equal(dead.attempts, 2);
  assert.equal(dead.next_attempt_at, null);
  assert.match(dead.last_error!, /EntityTooLarge/);
  assert.ok(dead.bytes > 9 * 1024 * 1024);

  const deadOnly = await okJson<Listed[]>('list', '--state', 'dead', '--spool', fixture.dir);
  assert.deepEqual(
    deadOnly.map((crash) => crash.crash_id),
    [...fixture.dead].reverse(),
  );
  const pendingOldestFirst = await okJson<Listed[]>('list', '--state', 'pending', '--oldest-first', '--spool', fixture.dir);
  assert.deepEqual(
    pendingOldestFirst.map((crash) => crash.crash_id),
    fixture.pending,
  );
  const limited = await okJson<Listed[]>('list', '--limit', '2', '--oldest-first', '--spool', fixture.dir);
  assert.deepEqual(
    limited.map((crash) => crash.crash_id),
    fixture.dead,
  );
  assert.deepEqual(await okJson<Listed[]>('list', '--older-than', '1h', '--spool', fixture.dir), []);
  assert.equal((await ok('list', '--older-than', '7d', '--spool', fixture.dir)).trim(), 'no crashes match');
  assert.equal((await okJson<Listed[]>('list', '--older-than', '0s', '--spool', fixture.dir)).length, 5);
});

test('show: raw crash JSON, dumps with sizes and checksums, attempts, state, last error', async () => {
  const deadId = fixture.dead[0]!;
  const human = await ok('show', deadId, '--spool', fixture.dir);
  assert.match(human, new RegExp(`^crash id\\s+${deadId}$`, 'm'));
  assert.match(human, /^state\s+dead$/m);
  assert.match(human, /^attempts\s+2$/m);
  assert.match(human, /^last error\s+.*EntityTooLarge/m);
  const dump = fixture.reports.get(deadId)!.dumps['upload_file_minidump']!;
  assert.match(human, new RegExp(`^upload_file_minidump\\s+9\\.0 MiB\\s+${dump.length}\\s+${sha256(dump)}$`, 'm'));
  assert.match(human, /^raw crash$/m);
  assert.match(human, new RegExp(`"uuid": "${deadId}"`));

  const mozillaId = fixture.pending[0]!;
  const report = fixture.reports.get(mozillaId)!;
  // The collector's answer carries a bp- prefix; show accepts it.
  const shown = await okJson<ShowJson>('show', `bp-${mozillaId}`, '--spool', fixture.dir);
  assert.equal(shown.crash_id, mozillaId);
  assert.equal(shown.state, 'pending');
  assert.equal(shown.attempts, 0);
  assert.match(shown.last_error!, /ECONNREFUSED/, 'storage failures are told per crash, without counting as attempts');
  assert.deepEqual(
    shown.dumps,
    Object.entries(report.dumps).map(([name, data]) => ({ name, bytes: data.length, sha256: sha256(data) })),
  );
  assert.equal(shown.raw_crash.uuid, mozillaId);
  assert.equal(shown.raw_crash['ProductName'], 'Firefox');
  assert.deepEqual(shown.raw_crash['Nested'], { list: [1, 2, 3] });
  assert.equal(shown.raw_crash.metadata.dump_checksums['upload_file_minidump_browser'], sha256(report.dumps['upload_file_minidump_browser']!));
});

test('export: raw_crash.json and <dump_name>.dmp, byte-identical to what was posted; never overwrites', async () => {
  for (const crashId of [fixture.pending[0]!, fixture.dead[1]!]) {
    const report = fixture.reports.get(crashId)!;
    const out = join(scratch('inspect-export'), 'crash');
    const exported = await okJson<{ crash_id: string; dir: string; files: { path: string; bytes: number; sha256: string }[] }>(
      'export',
      crashId,
      out,
      '--spool',
      fixture.dir,
    );
    assert.equal(exported.crash_id, crashId);
    assert.equal(exported.dir, out);
    const expectedFiles = ['raw_crash.json', ...Object.keys(report.dumps).map((name) => `${name}.dmp`)];
    assert.deepEqual(readdirSync(out).sort(), expectedFiles.sort());
    for (const [name, data] of Object.entries(report.dumps)) {
      const written = readFileSync(join(out, `${name}.dmp`));
      assert.equal(written.length, data.length);
      assert.equal(sha256(written), sha256(data), `${crashId} ${name}`);
    }
    const rawText = readFileSync(join(out, 'raw_crash.json'));
    const raw = JSON.parse(rawText.toString('utf8')) as ShowJson['raw_crash'];
    assert.equal(raw.uuid, crashId);
    for (const [key, value] of Object.entries(report.annotations)) assert.deepEqual(raw[key], value, key);
    for (const [name, data] of Object.entries(report.dumps)) assert.equal(raw.metadata.dump_checksums[name], sha256(data));
    assert.equal(exported.files.find((file) => file.path.endsWith('raw_crash.json'))!.sha256, sha256(rawText));

    await fails(2, /raw_crash\.json exists/, 'export', crashId, out, '--spool', fixture.dir);
  }
  const human = await ok('export', fixture.pending[1]!, join(scratch('inspect-export'), 'x'), '--spool', fixture.dir);
  assert.match(human, /^exported crash \S+ to \S+$/m);
  assert.match(human, /upload_file_minidump\.dmp\s+[\d.]+ KiB\s+[0-9a-f]{64}$/m);
});

test('read commands do not change the spool file', async () => {
  const dir = copySpool();
  const before = sha256(readFileSync(join(dir, 'spool.db')));
  await ok('summary', '--spool', dir);
  await ok('list', '--spool', dir);
  await ok('show', fixture.dead[0]!, '--spool', dir);
  await ok('export', fixture.dead[0]!, join(scratch('inspect-export'), 'x'), '--spool', dir);
  assert.equal(sha256(readFileSync(join(dir, 'spool.db'))), before);
});

test('requeue: dead crashes back to pending with attempts 0, last error kept', async () => {
  const dir = copySpool();
  const [first, second] = fixture.dead as [string, string];
  const run = await inspect('requeue', first, '--spool', dir);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, new RegExp(`^requeued 1 crash: ${first}$`, 'm'));
  const logged = run.stderr.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(
    logged.map((line) => [line['msg'], line['crash_id']]),
    [['crash requeued by operator', first]],
  );

  const shown = await okJson<ShowJson>('show', first, '--spool', dir);
  assert.equal(shown.state, 'pending');
  assert.equal(shown.attempts, 0);
  assert.equal(shown.next_attempt_at, null, 'due now: no time of its own, never 1970');
  assert.equal((shown as unknown as { due_now: boolean }).due_now, true);
  assert.match(shown.last_error!, /EntityTooLarge/, 'the last error is kept');
  let summary = await okJson<Summary>('summary', '--spool', dir);
  assert.deepEqual([summary.pending, summary.dead], [4, 1]);

  assert.deepEqual(await okJson('requeue', first, '--spool', dir), { requeued: [], already_pending: [first] });
  assert.deepEqual(await okJson('requeue', '--all-dead', '--spool', dir), { requeued: [second], already_pending: [] });
  summary = await okJson<Summary>('summary', '--spool', dir);
  assert.deepEqual([summary.pending, summary.dead], [5, 0]);
  assert.deepEqual(summary.attempts, [{ attempts: 0, pending: 5, dead: 0 }]);
  assert.equal((await ok('requeue', '--all-dead', '--spool', dir)).trim(), 'no dead-letter crashes to requeue');
});

test('I6: purge: refuses without --yes; deletes crash and dumps, logging each purged crash ID', async () => {
  const dir = copySpool();
  const [first, second] = fixture.dead as [string, string];
  const countDumps = () => {
    const db = new Database(join(dir, 'spool.db'), { readonly: true });
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM dumps').get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  const dumpsBefore = countDumps();
  const before = await okJson<Summary>('summary', '--spool', dir);

  await fails(2, /purge deletes crashes for good and would delete 1 crash \(9\.0 MiB\); add --yes/, 'purge', first, '--spool', dir);
  await fails(2, /would delete 2 crashes .*add --yes/, 'purge', '--all-dead', '--spool', dir);
  const unchanged = await okJson<Summary>('summary', '--spool', dir);
  assert.deepEqual([unchanged.pending, unchanged.dead, unchanged.bytes], [before.pending, before.dead, before.bytes]);

  const run = await inspect('purge', first, '--yes', '--spool', dir);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, new RegExp(`^purged 1 crash \\(9\\.0 MiB\\): ${first}$`, 'm'));
  const logged = run.stderr.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(logged.length, 1);
  assert.equal(logged[0]!['msg'], 'crash purged by operator');
  assert.equal(logged[0]!['crash_id'], first);
  assert.equal(logged[0]!['state'], 'dead');
  assert.equal(typeof logged[0]!['level'], 'number');
  assert.equal(typeof logged[0]!['time'], 'string');
  await fails(1, new RegExp(`no crash ${first}`), 'show', first, '--spool', dir);
  assert.equal(countDumps(), dumpsBefore - 1, 'its dump went with it');
  let summary = await okJson<Summary>('summary', '--spool', dir);
  assert.deepEqual([summary.pending, summary.dead], [3, 1]);
  assert.ok(summary.bytes < before.bytes - 9 * 1024 * 1024);

  const all = await inspect('purge', '--all-dead', '--yes', '--json', '--spool', dir);
  assert.equal(all.code, 0, all.stderr);
  const result = JSON.parse(all.stdout) as { purged: string[]; bytes: number };
  assert.deepEqual(result.purged, [second]);
  assert.ok(result.bytes > 9 * 1024 * 1024);
  assert.deepEqual(
    all.stderr.trim().split('\n').map((line) => (JSON.parse(line) as { crash_id: string }).crash_id),
    [second],
  );

  const pendingId = fixture.pending[2]!;
  const pendingRun = await inspect('purge', pendingId, '--yes', '--spool', dir);
  assert.equal(pendingRun.code, 0, pendingRun.stderr);
  assert.match(pendingRun.stderr, /"msg":"crash purged by operator"/);
  summary = await okJson<Summary>('summary', '--spool', dir);
  assert.deepEqual([summary.pending, summary.dead], [2, 0]);
  assert.equal(countDumps(), dumpsBefore - 3);
  assert.deepEqual(await okJson('purge', '--all-dead', '--yes', '--spool', dir), { purged: [], bytes: 0 });
});

test('every command takes its spool from SPOOL_DIR as the collector does; --spool overrides it', async () => {
  const byEnv = async (env: Record<string, string>, ...args: string[]) => {
    const run = await inspectWith(env, ...args);
    assert.equal(run.code, 0, run.stderr);
    return run.stdout;
  };
  // Run from another directory, where ./spool is not the spool: the collector's environment is enough.
  const summary = JSON.parse(await byEnv({ SPOOL_DIR: fixture.dir }, 'summary', '--json')) as Summary;
  assert.equal(summary.spool, fixture.dir);
  assert.equal(summary.pending, 3);
  const listed = JSON.parse(await byEnv({ SPOOL_DIR: fixture.dir }, 'list', '--json')) as unknown[];
  assert.equal(listed.length, 5);
  assert.match(await byEnv({ SPOOL_DIR: fixture.dir }, 'show', fixture.dead[0]!), new RegExp(fixture.dead[0]!));
  const elsewhere = join(scratch('inspect-elsewhere'), 'spool');
  await fails(2, /no spool directory \S+\/spool$/m, 'summary', '--spool', elsewhere);
  const overridden = await inspectWith({ SPOOL_DIR: fixture.dir }, 'summary', '--spool', elsewhere);
  assert.equal(overridden.code, 2, '--spool wins over SPOOL_DIR');
});

test('a missing spool is an error and is never created', async () => {
  const missing = join(scratch('inspect-missing'), 'spool');
  const someId = fixture.dead[0]!;
  for (const args of [['summary'], ['list'], ['show', someId], ['export', someId, join(missing, 'out')], ['requeue', '--all-dead'], ['purge', '--all-dead', '--yes']]) {
    await fails(2, /no spool directory \S+\/spool$/m, ...args, '--spool', missing);
  }
  assert.equal(existsSync(missing), false);

  const empty = scratch('inspect-empty');
  for (const args of [['summary'], ['requeue', '--all-dead'], ['purge', '--all-dead', '--yes']]) {
    await fails(2, /no spool at .*spool\.db/, ...args, '--spool', empty);
  }
  assert.deepEqual(readdirSync(empty), []);
});

test('a corrupt spool file, an unknown crash ID and another schema version are clear errors', async () => {
  const corrupt = scratch('inspect-corrupt');
  writeFileSync(join(corrupt, 'spool.db'), randomBytes(64 * 1024));
  for (const args of [['summary'], ['list'], ['show', fixture.dead[0]!], ['requeue', '--all-dead'], ['purge', '--all-dead', '--yes']]) {
    await fails(2, /file is not a database/, ...args, '--spool', corrupt);
  }

  const unknown = '00000000-0000-4000-8000-000000250101';
  await fails(1, new RegExp(`no crash ${unknown} in the spool`), 'show', unknown, '--spool', fixture.dir);
  await fails(1, /no crash/, 'export', unknown, join(scratch('inspect-export'), 'x'), '--spool', fixture.dir);
  const dir = copySpool();
  await fails(1, /no crash/, 'requeue', unknown, '--spool', dir);
  await fails(1, /no crash/, 'purge', unknown, '--yes', '--spool', dir);
  await fails(1, /no crash/, 'purge', unknown, '--spool', dir);

  const db = new Database(join(dir, 'spool.db'));
  db.pragma('user_version = 99');
  db.close();
  for (const args of [['summary'], ['list'], ['show', fixture.dead[0]!], ['requeue', '--all-dead'], ['purge', '--all-dead', '--yes']]) {
    await fails(2, /schema version 99; this spool-inspect reads versions 1 to 3/, ...args, '--spool', dir);
  }
});

test('bad arguments: exit 2 with one line; --help on every command', async () => {
  const spool = ['--spool', fixture.dir];
  await fails(2, /unknown command "frobnicate"/, 'frobnicate', ...spool);
  await fails(2, /unknown option --frob/, 'list', '--frob', ...spool);
  await fails(2, /--state must be pending, stored or dead/, 'list', '--state', 'gone', ...spool);
  await fails(2, /--older-than: expected a duration such as 30s/, 'list', '--older-than', '7x', ...spool);
  await fails(2, /--limit must be a whole number/, 'list', '--limit', 'many', ...spool);
  await fails(2, /--limit needs a value, and a value starting with "-" is taken for an option: write --limit=<value>/, 'list', '--limit', '-3', ...spool);
  await fails(2, /show takes <crash_id>/, 'show', ...spool);
  await fails(2, /export takes <crash_id> <dir>/, 'export', fixture.dead[0]!, ...spool);
  await fails(2, /not a crash ID: "nope"/, 'show', 'nope', ...spool);
  await fails(2, /give one crash ID or --all-dead/, 'requeue', ...spool);
  await fails(2, /not both/, 'purge', fixture.dead[0]!, '--all-dead', '--yes', ...spool);
  await fails(2, /summary takes no arguments/, 'summary', 'extra', ...spool);

  assert.match(await ok('--help'), /^Usage: spool-inspect \[COMMAND\]/);
  assert.match(await ok('help'), /^Usage: spool-inspect \[COMMAND\]/);
  for (const command of ['summary', 'list', 'show', 'export', 'requeue', 'purge']) {
    const help = await ok(command, '--help');
    assert.match(help, new RegExp(`^Usage: spool-inspect ${command}`));
    assert.match(help, /--spool DIR/);
    assert.equal(await ok('help', command), help);
  }
});

test('safe next to a running collector under load: every post 200, every inspect run exits 0', async (t) => {
  const spool = scratch('inspect-live');
  const collector = await CollectorProcess.start({ SPOOL_DIR: spool, STORAGE_URL: `file://${scratch('inspect-files')}` });
  try {
    const dumps = [...loadFixtureDumps().values()];
    const statuses: number[] = [];
    let inspecting = true;
    const client = async (index: number) => {
      for (let n = 0; inspecting || n < 10; n += 1) {
        const report = makeReport(n % 2 === 0 ? 'breakpad' : 'crashpad', dumps[(index + n) % dumps.length]!);
        statuses.push((await postReport(collector.url, report)).status);
      }
    };
    const inspections: { args: string[]; run: Run }[] = [];
    const inspector = async () => {
      try {
        for (let i = 0; i < 20; i += 1) {
          const args = [['summary'], ['list', '--json'], ['summary', '--json'], ['list', '--limit', '5'], ['requeue', '--all-dead', '--json']][i % 5]!;
          inspections.push({ args, run: await inspect(...args, '--spool', spool) });
        }
      } finally {
        inspecting = false;
      }
    };
    await Promise.all([inspector(), ...[0, 1, 2, 3].map(client)]);

    t.diagnostic(`${statuses.length} posts from 4 clients during ${inspections.length} spool-inspect runs`);
    assert.ok(statuses.length >= 40, `${statuses.length} posts`);
    assert.deepEqual(
      statuses.filter((status) => status !== 200),
      [],
      'every post accepted',
    );
    for (const { args, run } of inspections) {
      assert.equal(run.code, 0, `${args.join(' ')}: ${run.stderr}`);
      if (args.includes('--json')) JSON.parse(run.stdout);
    }
    // The drainer was never blocked for good: the spool empties.
    const deadline = Date.now() + 30_000;
    let summary = await okJson<Summary>('summary', '--spool', spool);
    while (summary.pending > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      summary = await okJson<Summary>('summary', '--spool', spool);
    }
    assert.equal(summary.pending, 0);
    assert.equal(summary.integrity.ok, true);
    assert.equal(collector.countLogs('crash uploaded'), statuses.length);
  } finally {
    await collector.stop();
  }
});
