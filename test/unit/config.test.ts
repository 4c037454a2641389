import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig, parseByteSize, parsePublishUrl, parseStorageUrl } from '../../src/config.js';

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
  assert.throws(() => parseStorageUrl('s3://bb'), /bucket name is 3 to 63 characters/);
  assert.throws(() => parseStorageUrl('s3://Upper'), /bucket name is 3 to 63 characters/);
  assert.throws(() => parseStorageUrl('file://'));
});

test('PUBLISH_URL: empty (nothing announced), none (nothing, on purpose), sqs:<queue URL>, amqp://…?queue=<name>, pubsub:projects/<p>/topics/<t>; anything else is refused, naming the forms', () => {
  assert.equal(loadConfig({}).publishUrl, undefined);
  assert.equal(parsePublishUrl('  '), undefined);
  assert.deepEqual(parsePublishUrl('sqs:https://sqs.eu-central-1.amazonaws.com/123456789012/socorro-standard'), {
    kind: 'sqs',
    queueUrl: 'https://sqs.eu-central-1.amazonaws.com/123456789012/socorro-standard',
  });
  assert.deepEqual(parsePublishUrl('amqp://user:secret@rabbit:5672/socorro?queue=socorro.normal'), {
    kind: 'amqp',
    url: 'amqp://user:secret@rabbit:5672/socorro',
    queue: 'socorro.normal',
  });
  // Antenna's CRASHMOVER_CRASHPUBLISH_PROJECT_ID and _TOPIC_NAME, as one resource name.
  assert.deepEqual(parsePublishUrl('pubsub:projects/moz-fx-socorro-prod/topics/socorro-standard'), { kind: 'pubsub', topic: 'projects/moz-fx-socorro-prod/topics/socorro-standard' });
  const bads = ['sqs:', 'sqs:not a url', 'sqs:https://sqs.example.com/only-one-part', 'sqs:ftp://host/1/q', 'amqp://host/vhost', 'pubsub://project/topic', 'https://sqs.example.com/1/q'];
  // Pub/Sub's own name rules: a topic of 3+ characters starting with a letter, not goog*; a project ID in lower case.
  bads.push('pubsub:', 'pubsub:my-topic', 'pubsub:projects/p1/topics/t1', 'pubsub:projects/proj1/topics/1topic', 'pubsub:projects/proj1/topics/google-topic', 'pubsub:projects/Proj1/topics/topic1', 'pubsub:projects/proj1/topics/topic1/extra');
  for (const bad of bads) {
    assert.throws(() => parsePublishUrl(bad), /expected sqs:<queue URL>, amqp:\/\/user:password@host:port\/vhost\?queue=<name>, pubsub:projects\/<project>\/topics\/<topic> or none/, bad);
  }
  assert.deepEqual(parsePublishUrl('none'), { kind: 'none' }, 'nothing announced, said on purpose');
  assert.throws(() => loadConfig({ PUBLISH_URL: 'kafka://broker' }), /PUBLISH_URL: expected sqs:/);
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
