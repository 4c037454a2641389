/**
 * deploy/iam-policy.json grants exactly the actions behind the AWS SDK commands the collector sends
 * (storage and queue), on the keys it writes: nothing it needs is missing, nothing more is granted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dumpKey, dumpNamesKey, rawCrashKey } from '../../src/storage/storage-keys.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const policy = JSON.parse(readFileSync(new URL('../../deploy/iam-policy.json', import.meta.url), 'utf8')) as {
  Statement: { Sid: string; Action: string[]; Resource: string }[];
};

/** The IAM action each SDK command needs (HeadBucket is authorised as s3:ListBucket). */
const ACTION_OF: Record<string, string> = {
  PutObjectCommand: 's3:PutObject',
  GetObjectCommand: 's3:GetObject',
  DeleteObjectCommand: 's3:DeleteObject',
  HeadBucketCommand: 's3:ListBucket',
  SendMessageBatchCommand: 'sqs:SendMessage',
  GetQueueUrlCommand: 'sqs:GetQueueUrl',
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

test('the IAM policy grants the action of every AWS command the collector sends, and no other', () => {
  const sent = new Set(sources(SRC).flatMap((file) => [...readFileSync(file, 'utf8').matchAll(/new (\w+Command)\(/g)].map((match) => match[1]!)));
  assert.ok(sent.has('PutObjectCommand') && sent.has('SendMessageBatchCommand'), [...sent].join(', '));
  const unknown = [...sent].filter((command) => !ACTION_OF[command]);
  assert.deepEqual(unknown, [], 'a new AWS command: add its IAM action to ACTION_OF and deploy/iam-policy.json');
  const needed = new Set([...sent].map((command) => ACTION_OF[command]!));
  const granted = new Set(policy.Statement.flatMap((statement) => statement.Action));
  assert.deepEqual([...granted].sort(), [...needed].sort());
});

test('crashes are written only under the prefix the policy lets PutObject write, the probe only under its own', () => {
  const store = policy.Statement.find((statement) => statement.Sid === 'StoreCrashes')!;
  const prefix = /^arn:aws:s3:::[^/]+\/prod\/(.*)\*$/.exec(store.Resource)![1]!;
  const crashId = 'de1bb258-cbbf-4589-a673-34f802241204';
  for (const key of [dumpNamesKey(crashId), dumpKey(crashId, 'upload_file_minidump'), dumpKey(crashId, 'browser'), rawCrashKey(crashId)]) {
    assert.ok(key.startsWith(prefix), `${key} under ${prefix}`);
  }
  const probe = policy.Statement.find((statement) => statement.Sid === 'PreflightProbe')!;
  const probeFolder = /\/prod\/([^*]+)\*$/.exec(probe.Resource)![1]!;
  assert.match(readFileSync(join(SRC, 'storage/s3-storage.ts'), 'utf8'), new RegExp(`\\$\\{this\\.options\\.prefix\\}${probeFolder}`));
  assert.deepEqual(probe.Action.sort(), ['s3:DeleteObject', 's3:GetObject', 's3:PutObject']);
});
