/**
 * The dedup index in the spool: a repeat is found within the window (also in the same batch and
 * after reopening), a rolled-back batch leaves no entry behind, expiry removes the oldest only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { openSpoolDatabase } from '../../src/spool/schema.js';
import { SpoolStore, type WriteOp } from '../../src/spool/runtime/store.js';

const append = (identity: string, content: string, receivedAt: number, crashId = randomUUID()): WriteOp => ({
  kind: 'append',
  crashId,
  receivedAt,
  rawCrashJson: JSON.stringify({ metadata: { collector_notes: [] } }),
  dumpNamesJson: '["upload_file_minidump"]',
  bytes: 10,
  dumps: [{ name: 'upload_file_minidump', data: Buffer.from('MDMP') }],
  dedup: { identity, content, notBefore: 0 },
});

test('repeats are found in the same batch, after a commit and after reopening; other content is a new crash', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dedup-'));
  let store = new SpoolStore(openSpoolDatabase(dir, { durability: 'normal', create: true }));
  const first = append('id-1', 'c-1', 1000);
  const results = store.apply([first, append('id-1', 'c-1', 1001), append('id-1', 'c-2', 1002)]);
  assert.deepEqual(results[0], undefined);
  assert.deepEqual(results[1], { duplicateOf: (first as { crashId: string }).crashId });
  assert.equal(results[2], undefined, 'other content: stored');
  assert.deepEqual(store.apply([append('id-1', 'c-1', 2000)]), [{ duplicateOf: (first as { crashId: string }).crashId }]);
  store.db.close();

  store = new SpoolStore(openSpoolDatabase(dir, { durability: 'normal', create: false }));
  assert.deepEqual(store.apply([append('id-1', 'c-1', 3000)]), [{ duplicateOf: (first as { crashId: string }).crashId }]);
  assert.equal(store.db.prepare('SELECT COUNT(*) FROM crashes').pluck().get(), 2);
  store.db.close();
});

test('a batch that fails leaves no index entry; expiry drops the oldest entries only', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dedup-'));
  const store = new SpoolStore(openSpoolDatabase(dir, { durability: 'normal', create: true }));
  store.apply([append('other', 'x', 500)]);
  // A row SQLite refuses (dump_names NULL) makes the whole batch fail.
  const broken = { ...append('id-3', 'c', 1000), dumpNamesJson: null as unknown as string };
  assert.throws(() => store.apply([append('id-2', 'c', 1000), broken]));
  assert.equal(store.apply([append('id-2', 'c', 1100)])[0], undefined, 'the rolled-back entry is not remembered');

  store.apply([append('late', 'c', 5000)]);
  assert.deepEqual(store.apply([{ kind: 'expireDedup', before: 2000, limit: 100 }]), [{ expired: 2 }]);
  assert.equal(store.apply([append('id-2', 'c', 6000)])[0], undefined, 'expired: a new crash');
  assert.ok(store.apply([append('late', 'c', 6000)])[0], 'not expired: still a repeat');
  store.db.close();
});
