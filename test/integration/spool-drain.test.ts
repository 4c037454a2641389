/**
 * `spool-inspect drain`: a dead node's spool, attached elsewhere, uploaded with the collector's
 * storage settings — 10,000 crashes into Ceph RGW, byte for byte; crashes it cannot upload are
 * listed with exit 1; a spool a live collector holds is refused with nothing touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { listKeys, s3Target } from '../helpers/stored-crashes.js';
import { fillSpool } from '../bench/fill-spool.js';
import { dumpKey, rawCrashKey } from '../../src/storage/storage-keys.js';

const INSPECT = new URL('../../scripts/spool-inspect', import.meta.url).pathname;

function inspect(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(INSPECT, args, { env: { PATH: process.env['PATH'] ?? '', ...env }, maxBuffer: 64 * 1024 * 1024, timeout: 600_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function spooledIds(spool: string): string[] {
  const db = new Database(join(spool, 'spool.db'), { readonly: true });
  try {
    return db.prepare('SELECT crash_id FROM crashes ORDER BY seq').pluck().all() as string[];
  } finally {
    db.close();
  }
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

test("drain: 10,000 crashes of a dead node's spool reach S3 byte for byte; exit 0, progress on stderr", async () => {
  const spool = tempDir('dead-node');
  await fillSpool(spool, 10_000, 1024);
  const ids = spooledIds(spool);
  assert.equal(ids.length, 10_000);
  const s3 = s3Target('drain');

  const result = await inspect(['drain', '--spool', spool], { ...s3.env, DRAIN_CONCURRENCY: '16' });
  assert.equal(result.code, 0, result.stderr.slice(-2000));
  assert.match(result.stdout, /^uploaded 10000 crashes in /);
  assert.match(result.stderr, /spool-inspect drain: \d+ uploaded \([\d.]+\/s\), \d+ pending, \d+ stored, \d+ s/);
  assert.deepEqual(spooledIds(spool), [], 'the spool is empty');

  let stored = 0;
  for await (const keys of listKeys(s3.client, s3.bucket, `${s3.prefix}v1/raw_crash/`)) stored += keys.length;
  assert.equal(stored, 10_000);
  for (const crashId of ids.filter((_, index) => index % 500 === 0)) {
    const raw = JSON.parse((await s3.reader.get(rawCrashKey(crashId)))!.toString('utf8')) as { uuid: string; metadata: { dump_checksums: Record<string, string> } };
    assert.equal(raw.uuid, crashId);
    const dump = (await s3.reader.get(dumpKey(crashId, 'upload_file_minidump')))!;
    assert.equal(sha256(dump), raw.metadata.dump_checksums['upload_file_minidump'], `${crashId}: the dump as received`);
  }
});

test('drain: crashes it cannot upload in time are listed, exit 1; a spool a live collector holds is refused (exit 3), nothing touched', async () => {
  const spool = tempDir('unreachable');
  await fillSpool(spool, 20, 512);
  const unreachable = { STORAGE_URL: 's3://bucket', S3_ENDPOINT: 'http://127.0.0.1:9', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_REGION: 'us-east-1' };
  const left = await inspect(['drain', '--spool', spool, '--max-time', '2s', '--json'], unreachable);
  assert.equal(left.code, 1, left.stderr.slice(-2000));
  const outcome = JSON.parse(left.stdout) as { uploaded: number; left: { crash_id: string; state: string }[] };
  assert.equal(outcome.uploaded, 0);
  assert.deepEqual(outcome.left.map((crash) => crash.crash_id), spooledIds(spool));

  const collector = await CollectorProcess.start({ SPOOL_DIR: spool, ...unreachable });
  try {
    const refused = await inspect(['drain', '--spool', spool], { ...s3Target('refused').env });
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /refused, nothing touched: /);
    assert.equal(spooledIds(spool).length, 20);
  } finally {
    await collector.stop();
  }
});

test('drain: a wrong setting — no credentials, no such bucket, no such queue — exits 2 at once, the spool untouched', async () => {
  const spool = tempDir('drain-settings');
  await fillSpool(spool, 5, 512);
  const target = s3Target('drain-settings');
  const before = spooledIds(spool);
  for (const [name, env, pattern] of [
    ['no credentials', { ...target.env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', HOME: tempDir('drain-home') }, /STORAGE_URL: .*no credentials found/],
    ['no such bucket', { ...target.env, STORAGE_URL: 's3://no-such-bucket-for-drain/' }, /STORAGE_URL: .*does not exist/],
    ['no such queue', { ...target.env, PUBLISH_URL: `${process.env['AMQP_URL']}?queue=no-such-queue` }, /PUBLISH_URL: .*no-such-queue/],
  ] as const) {
    const started = Date.now();
    const run = await inspect(['drain', '--spool', spool, '--max-time', '60s'], env);
    assert.equal(run.code, 2, `${name}: ${run.stderr.slice(-1000)}`);
    assert.match(run.stderr, pattern, name);
    assert.ok(Date.now() - started < 20_000, `${name}: at once, not after --max-time`);
    assert.deepEqual(spooledIds(spool), before, `${name}: nothing drained`);
  }
});
