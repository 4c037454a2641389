/**
 * `node dist/main.js check`: one line per check, exit 0 when all pass, 2 when a setting is wrong,
 * 1 when a dependency does not answer. Against the real collector build, Ceph RGW and the SQS server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { MAIN, tempDir } from '../helpers/collector-process.js';
import { pubsubQueue, pubsubSkipReason, queueSettings } from '../helpers/queues.js';
import { s3Target } from '../helpers/stored-crashes.js';

function check(env: Record<string, string>): { status: number | null; lines: string[] } {
  const result = spawnSync(process.execPath, [MAIN, 'check'], {
    env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: '0', SPOOL_DIR: tempDir('check-spool'), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(result.stderr, '', 'nothing on stderr');
  return { status: result.status, lines: result.stdout.trimEnd().split('\n') };
}

const line = (lines: string[], name: string) => lines.find((one) => one.slice(6).startsWith(name)) ?? `(no ${name} line in ${JSON.stringify(lines)})`;

test('check: everything reachable and writable: one "ok" line per check, exit 0', () => {
  const target = s3Target('check');
  queueSettings(); // says how to start the queues when they are not there
  const { status, lines } = check({ ...target.env, PUBLISH_URL: `sqs:${process.env['SQS_QUEUE_URL']}` });
  assert.equal(status, 0, lines.join('\n'));
  assert.deepEqual(lines.map((one) => one.split(/\s+/)[1]), ['configuration', 'spool', 'port', 'storage', 'queue']);
  assert.ok(lines.every((one) => one.startsWith('ok ')), lines.join('\n'));
  assert.match(line(lines, 'storage'), /a probe written, read back and deleted/);
});

test('check: a wrong setting exits 2 naming it: no such bucket, refused credentials, a spool path that is a file, a port in use', async () => {
  const target = s3Target('check');
  const noBucket = check({ ...target.env, STORAGE_URL: 's3://no-such-bucket-for-check' });
  assert.equal(noBucket.status, 2);
  assert.match(line(noBucket.lines, 'storage'), /^FAIL .*NoSuchBucket.*the bucket in STORAGE_URL does not exist/);

  const badKey = check({ ...target.env, AWS_SECRET_ACCESS_KEY: 'not-the-secret' });
  assert.equal(badKey.status, 2);
  assert.match(line(badKey.lines, 'storage'), /^FAIL .*(SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied).*credentials/);

  const file = join(tempDir('check-file'), 'spool');
  writeFileSync(file, 'not a directory');
  const notDir = check({ STORAGE_URL: `file://${tempDir('check-files')}`, SPOOL_DIR: file });
  assert.equal(notDir.status, 2);
  assert.match(line(notDir.lines, 'spool'), /^FAIL .*is not a directory/);

  const taken = createServer();
  const port = await new Promise<number>((resolve) => taken.listen(0, '127.0.0.1', () => resolve((taken.address() as { port: number }).port)));
  try {
    const inUse = check({ STORAGE_URL: `file://${tempDir('check-files')}`, PORT: String(port) });
    assert.equal(inUse.status, 2);
    assert.match(line(inUse.lines, 'port'), /^FAIL .*EADDRINUSE/);
  } finally {
    taken.close();
  }
});

test('check: missing credentials, a queue that does not exist, one refusing the credentials: settings, exit 2, each saying what to change without library noise', () => {
  const target = s3Target('check');
  const files = { STORAGE_URL: `file://${tempDir('check-files')}` };
  // HOME elsewhere: no credentials file of this machine's user is found either.
  const noCredentials = check({ ...target.env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', HOME: tempDir('check-home') });
  assert.equal(noCredentials.status, 2, noCredentials.lines.join('\n'));
  assert.match(line(noCredentials.lines, 'storage'), /^FAIL .*no credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  assert.doesNotMatch(line(noCredentials.lines, 'storage'), /S3_ENDPOINT and the network/);

  const { amqpUrl, sqsEndpoint } = queueSettings();
  const noSqsQueue = check({ ...files, PUBLISH_URL: `sqs:${sqsEndpoint}/000000000000/no-such-queue`, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' });
  assert.equal(noSqsQueue.status, 2, noSqsQueue.lines.join('\n'));
  assert.match(line(noSqsQueue.lines, 'queue'), /^FAIL .*no-such-queue.*the queue does not exist/);

  const noAmqpQueue = check({ ...files, PUBLISH_URL: `${amqpUrl}?queue=no-such-queue` });
  assert.equal(noAmqpQueue.status, 2, noAmqpQueue.lines.join('\n'));
  assert.match(line(noAmqpQueue.lines, 'queue'), /^FAIL .*the queue does not exist/);

  const wrongPassword = new URL(amqpUrl);
  wrongPassword.password = 'not-the-password';
  wrongPassword.searchParams.set('queue', 'crashspool-test');
  const refused = check({ ...files, PUBLISH_URL: wrongPassword.href });
  assert.equal(refused.status, 2, refused.lines.join('\n'));
  assert.match(line(refused.lines, 'queue'), /^FAIL .*the credentials are missing, refused or not allowed/);

  for (const one of [noCredentials, noSqsQueue, noAmqpQueue, refused]) {
    for (const text of one.lines) assert.doesNotMatch(text, /UnknownError|queue +queue /, 'no library noise');
  }
});

test('check: Pub/Sub: the topic there passes; a topic that does not exist, or no Google credentials, is a setting (exit 2) saying what to change; nothing is published', { skip: pubsubSkipReason() }, async () => {
  const files = { STORAGE_URL: `file://${tempDir('check-files')}` };
  const topic = await pubsubQueue();
  try {
    const emulator = { PUBSUB_EMULATOR_HOST: process.env['PUBSUB_EMULATOR_HOST']! };
    const there = check({ ...files, ...emulator, PUBLISH_URL: topic.publishUrl() });
    assert.equal(there.status, 0, there.lines.join('\n'));
    assert.match(line(there.lines, 'queue'), /^ok .*pubsub:projects\/crashspool-test\/topics\/.*: the queue answers/);
    assert.deepEqual(await topic.receive(), [], 'the check published nothing (other readers of the topic would not ignore it)');

    const missing = check({ ...files, ...emulator, PUBLISH_URL: 'pubsub:projects/crashspool-test/topics/no-such-topic' });
    assert.equal(missing.status, 2, missing.lines.join('\n'));
    assert.match(line(missing.lines, 'queue'), /^FAIL .*404 NOT_FOUND.*the queue does not exist/);

    // Google's service, no emulator and no credentials anywhere: HOME elsewhere (no gcloud login), and
    // no metadata server asked (on a Google Cloud machine it would give the machine's account).
    const noCredentials = check({ ...files, HOME: tempDir('check-home'), METADATA_SERVER_DETECTION: 'none', PUBLISH_URL: topic.publishUrl() });
    assert.equal(noCredentials.status, 2, noCredentials.lines.join('\n'));
    assert.match(line(noCredentials.lines, 'queue'), /^FAIL .*Could not load the default credentials.*GOOGLE_APPLICATION_CREDENTIALS/);
  } finally {
    await topic.close();
  }
});

test('check: storage or the queue not answering exits 1', () => {
  const target = s3Target('check');
  const storageDown = check({ ...target.env, S3_ENDPOINT: 'http://127.0.0.1:9' });
  assert.equal(storageDown.status, 1);
  assert.match(line(storageDown.lines, 'storage'), /^FAIL .*unreachable: ECONNREFUSED/);

  const queueDown = check({ STORAGE_URL: `file://${tempDir('check-files')}`, PUBLISH_URL: 'sqs:http://127.0.0.1:9/000000000000/nowhere', AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' });
  assert.equal(queueDown.status, 1);
  assert.match(line(queueDown.lines, 'queue'), /^FAIL /);
});
