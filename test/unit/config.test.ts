import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig, parseByteSize, parseStorageUrl } from '../../src/config.js';

test('defaults run locally with no cloud account', () => {
  const config = loadConfig({});
  assert.equal(config.port, 8000);
  assert.equal(config.spoolDir, './spool');
  assert.equal(config.durability, 'full');
  assert.deepEqual(config.storageUrl, { kind: 'file', dir: './crashes' });
  assert.equal(config.s3Endpoint, undefined);
});

test('storage URLs: s3 with and without prefix, file', () => {
  assert.deepEqual(parseStorageUrl('s3://my-bucket'), { kind: 's3', bucket: 'my-bucket', prefix: '' });
  assert.deepEqual(parseStorageUrl('s3://my-bucket/prod/eu/'), { kind: 's3', bucket: 'my-bucket', prefix: 'prod/eu/' });
  assert.deepEqual(parseStorageUrl('file:///var/crashes'), { kind: 'file', dir: '/var/crashes' });
  assert.throws(() => parseStorageUrl('gs://bucket'));
  assert.throws(() => parseStorageUrl('s3://'));
  assert.throws(() => parseStorageUrl('file://'));
});

test('sizes accept suffixes', () => {
  assert.equal(parseByteSize('512'), 512);
  assert.equal(parseByteSize('1k'), 1024);
  assert.equal(parseByteSize('25m'), 25 * 1024 * 1024);
  assert.equal(parseByteSize('2GiB'), 2 * 1024 ** 3);
  assert.throws(() => parseByteSize('lots'));
  assert.throws(() => parseByteSize('0'));
});

test('every bad value is reported with the variable it came from', () => {
  const bad: Record<string, string> = {
    PORT: 'eighty',
    SPOOL_DURABILITY: 'sometimes',
    STORAGE_URL: 'ftp://x',
    S3_ENDPOINT: 'not a url',
    LOG_LEVEL: 'loud',
    DRAIN_CONCURRENCY: '0',
    DRAIN_MAX_ATTEMPTS: '-1',
    SHUTDOWN_DEADLINE_SECONDS: 'soon',
    MAX_BODY_BYTES: 'big',
  };
  try {
    loadConfig(bad);
    assert.fail('expected a ConfigError');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    for (const variable of Object.keys(bad)) assert.match(error.message, new RegExp(`${variable}:`), variable);
  }
});

test('one bad variable alone is named', () => {
  assert.throws(() => loadConfig({ PORT: '70000' }), /PORT: expected 0\.\.65535/);
  assert.throws(() => loadConfig({ DRAIN_RETRY_BASE_SECONDS: '10', DRAIN_RETRY_MAX_SECONDS: '5' }), /DRAIN_RETRY_MAX_SECONDS/);
});
