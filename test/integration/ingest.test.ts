/**
 * Every client style, every fixture, through the real collector process into real storage
 * (Ceph RGW over HTTP, and the file backend), read back byte for byte.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CollectorProcess, MAIN, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport } from '../helpers/http-client.js';
import { makeReport, type ClientStyle, type Report } from '../helpers/multipart.js';
import { expectedFrom, fileReader, s3Target, waitUntilStored, type ObjectReader } from '../helpers/stored-crashes.js';

const STYLES: ClientStyle[] = ['breakpad', 'crashpad', 'electron', 'mozilla'];

function storageCases(): { name: string; env: () => Record<string, string>; reader: () => ObjectReader }[] {
  let s3: ReturnType<typeof s3Target> | undefined;
  const files = tempDir('files');
  return [
    { name: 'S3 (Ceph RGW)', env: () => (s3 ??= s3Target('ingest')).env, reader: () => (s3 ??= s3Target('ingest')).reader },
    { name: 'file://', env: () => ({ STORAGE_URL: `file://${files}` }), reader: () => fileReader(files) },
  ];
}

for (const storage of storageCases()) {
  describe(`ingest into ${storage.name}`, () => {
    let collector: CollectorProcess;
    before(async () => {
      collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), ...storage.env() });
    });
    after(() => collector.stop());

    for (const style of STYLES) {
      test(`${style}: every fixture is acknowledged and stored byte-identical`, async () => {
        const dumps = [...loadFixtureDumps().values()];
        const posted: { crashId: string; report: Report }[] = [];
        for (const [index, dump] of dumps.entries()) {
          const report = makeReport(style, dump, dumps[(index + 1) % dumps.length]);
          const answer = await postReport(collector.url, report);
          assert.equal(answer.status, 200, answer.body);
          posted.push({ crashId: crashIdFrom(answer), report });
        }
        for (const { crashId, report } of posted) {
          const raw = (await waitUntilStored(storage.reader(), crashId, expectedFrom(report))) as {
            metadata: Record<string, unknown>;
            submitted_timestamp: string;
            ProductName?: string;
          };
          assert.equal(raw.metadata['payload'], style === 'mozilla' ? 'json' : 'multipart');
          assert.equal(raw.metadata['payload_compressed'], report.gzip ? '1' : '0');
          assert.equal(raw.metadata['payload_size'], report.body.length);
          assert.equal(raw.metadata['user_agent'], `test-${style}`);
          assert.equal(raw.metadata['throttle_rule'], 'accept_everything');
          assert.ok(Math.abs(Date.parse(raw.submitted_timestamp) - Date.now()) < 120_000);
          assert.ok(raw.ProductName, 'a ProductName is always there');
          if (report.query) assert.ok('product' in raw, 'Crashpad URL query kept');
        }
        const accepted = collector.logs.filter((line) => line.msg === 'crash accepted' && posted.some((p) => p.crashId === line['crash_id']));
        assert.equal(accepted.length, posted.length, 'one log line per accepted crash with its ID');
      });
    }
  });
}

test('I1, I8: an acknowledged crash survives kill -9 and reaches storage after the restart', async () => {
  const spool = tempDir('spool');
  const s3 = s3Target('sigkill');
  // First run: storage unreachable, so the crash can only be in the spool when the process dies.
  const first = await CollectorProcess.start({ SPOOL_DIR: spool, ...s3.env, S3_ENDPOINT: 'http://127.0.0.1:9' });
  const report = makeReport('crashpad', loadFixtureDumps().get('linux_raise_sigabrt.dmp')!);
  const crashId = crashIdFrom(await postReport(first.url, report));
  first.kill('SIGKILL');
  assert.equal((await first.exited).signal, 'SIGKILL');
  assert.equal(await s3.reader.get(`v1/dump/${crashId}`), undefined, 'not uploaded before the kill');
  // Gzipped as Crashpad sends it, the report was spooled as sent (about a fifth of the dump's bytes).
  const spooled = new Database(join(spool, 'spool.db'), { readonly: true });
  try {
    const kept = spooled.prepare('SELECT LENGTH(b.gzip) AS sent, (SELECT SUM(body_length) FROM dumps d WHERE d.seq = b.seq) AS dump FROM bodies b').all();
    assert.equal(kept.length, 1, 'the body as sent is what the spool holds');
    assert.deepEqual(kept[0], { sent: report.body.length, dump: loadFixtureDumps().get('linux_raise_sigabrt.dmp')!.length });
  } finally {
    spooled.close();
  }

  const second = await CollectorProcess.start({ SPOOL_DIR: spool, ...s3.env });
  try {
    await waitUntilStored(s3.reader, crashId, expectedFrom(report));
  } finally {
    await second.stop();
  }
});

test('an invalid setting stops the collector with a message naming the variable', () => {
  const result = spawnSync(process.execPath, [MAIN], {
    env: { PATH: process.env['PATH'] ?? '', PORT: 'eighty', SPOOL_DURABILITY: 'maybe' },
    encoding: 'utf8',
    timeout: 10_000,
  });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /PORT: expected a whole number/);
  assert.match(result.stderr, /SPOOL_DURABILITY: expected one of full, normal/);
});

test('health and version endpoints answer', async () => {
  const collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), STORAGE_URL: `file://${tempDir('files')}` });
  try {
    const lb = await fetch(`${collector.url}/__lbheartbeat__`);
    assert.equal(lb.status, 200);
    const version = (await (await fetch(`${collector.url}/__version__`)).json()) as Record<string, string>;
    assert.deepEqual(Object.keys(version).sort(), ['build', 'commit', 'source', 'version'], "Dockerflow's keys and nothing else");
    assert.match(version['version']!, /^\d+\.\d+\.\d+/);
    assert.match(version['commit']!, /^[0-9a-f]{40}$/);
    // URLs when known (SOURCE_URL, BUILD_URL or a CI's variables at build time), never a local path.
    for (const key of ['source', 'build']) assert.match(version[key]!, /^(https?:\/\/\S+|unknown)$/, `${key}: ${version[key]}`);
  } finally {
    await collector.stop();
  }
});
