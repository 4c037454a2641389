/**
 * A spool written by the collector before schema version 3 (test/fixtures/spool-v2, made by the
 * collector of commit 5b934c4) is upgraded in place by today's collector, which then drains every
 * crash in it to the local Ceph RGW byte for byte (I8 restart resumes everything).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { deletePrefix, s3Target } from '../helpers/stored-crashes.js';
import { dumpKey, rawCrashKey } from '../../src/storage/storage-keys.js';
import { SCHEMA_VERSION } from '../../src/spool/schema.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/spool-v2/', import.meta.url));

interface Posted {
  crash_id: string;
  annotations: Record<string, unknown>;
  dumps: Record<string, string>;
}

const target = s3Target('spool-upgrade');
const spool = tempDir('spool-upgrade');

after(async () => {
  rmSync(spool, { recursive: true, force: true });
  await deletePrefix(target.client, target.env['STORAGE_URL']!);
});

test('I8: a version 2 spool from the previous release is upgraded in place and drained, every crash byte for byte', async () => {
  copyFileSync(join(FIXTURE, 'spool.db'), join(spool, 'spool.db'));
  const posted = JSON.parse(readFileSync(join(FIXTURE, 'crashes.json'), 'utf8')) as Posted[];
  const collector = await CollectorProcess.start({ ...target.env, SPOOL_DIR: spool });
  try {
    const started = collector.logs.find((line) => line.msg === 'collector started')!;
    assert.equal(started['pending'], posted.length);
    for (const crash of posted) await collector.waitForLog((line) => line.msg === 'crash uploaded' && line['crash_id'] === crash.crash_id);
    for (const crash of posted) {
      const raw = JSON.parse((await target.reader.get(rawCrashKey(crash.crash_id)))!.toString('utf8')) as Record<string, unknown>;
      for (const [key, value] of Object.entries(crash.annotations)) assert.deepEqual(raw[key], value, `${crash.crash_id} ${key}`);
      for (const [name, sha256] of Object.entries(crash.dumps)) {
        const stored = await target.reader.get(dumpKey(crash.crash_id, name));
        assert.equal(stored && createHash('sha256').update(stored).digest('hex'), sha256, `${crash.crash_id} ${name}`);
      }
    }
  } finally {
    collector.kill('SIGTERM');
    assert.equal((await collector.exited).code, 0);
  }
  const db = new Database(join(spool, 'spool.db'), { readonly: true });
  try {
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.equal(db.prepare('SELECT COUNT(*) FROM crashes').pluck().get(), 0);
  } finally {
    db.close();
  }
});
