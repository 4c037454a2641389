import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sanitizeDumpName } from '../../src/dump-names.js';
import { dumpKey, dumpNamesKey, rawCrashKey } from '../../src/storage/storage-keys.js';

const id = 'de1bb258-cbbf-4589-a673-34f800251125';

test('keys follow the Socorro/Antenna layout', () => {
  assert.equal(dumpNamesKey(id), `v1/dump_names/${id}`);
  assert.equal(dumpKey(id, 'upload_file_minidump'), `v1/dump/${id}`);
  assert.equal(dumpKey(id, 'upload_file_minidump_browser'), `v1/upload_file_minidump_browser/${id}`);
  assert.equal(rawCrashKey(id), `v1/raw_crash/20251125/${id}`);
});

test('dump names keep [A-Za-z0-9_] and at most 30 characters', () => {
  assert.equal(sanitizeDumpName('upload_file_minidump'), 'upload_file_minidump');
  assert.equal(sanitizeDumpName('../../etc/passwd'), 'etcpasswd');
  assert.equal(sanitizeDumpName('a'.repeat(40)), 'a'.repeat(30));
  assert.equal(sanitizeDumpName('dump-with.dots and spaces'), 'dumpwithdotsandspaces');
});

test('empty and reserved dump names are refused', () => {
  for (const name of ['', '...', 'raw_crash', 'dump_names', 'processed_crash']) {
    assert.equal(sanitizeDumpName(name), undefined, name);
  }
});
