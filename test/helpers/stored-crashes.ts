/**
 * Reads crashes back from where the collector drained them — real S3 (Ceph RGW) or a directory —
 * and checks them against what was posted, byte for byte.
 */
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, NoSuchKey, S3Client } from '@aws-sdk/client-s3';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { dumpKey, dumpNamesKey, rawCrashKey } from '../../src/storage/storage-keys.js';
import type { Report } from './multipart.js';

export interface ObjectReader {
  get(key: string): Promise<Buffer | undefined>;
}

export interface S3TestTarget {
  env: Record<string, string>;
  reader: ObjectReader;
  client: S3Client;
  bucket: string;
  /** Key prefix of this target in the bucket, ending in '/' (or `""`: the whole bucket). */
  prefix: string;
}

/** The local RGW started by scripts/local-s3 (npm test exports its settings). */
export function s3Settings() {
  const endpoint = process.env['S3_ENDPOINT'];
  const bucket = process.env['S3_TEST_BUCKET'];
  if (!endpoint || !bucket) {
    throw new Error('S3_ENDPOINT and S3_TEST_BUCKET are not set: run the tests with `npm test`, which starts the local Ceph RGW');
  }
  return {
    endpoint,
    bucket,
    accessKeyId: process.env['AWS_ACCESS_KEY_ID'] ?? '',
    secretAccessKey: process.env['AWS_SECRET_ACCESS_KEY'] ?? '',
    region: process.env['AWS_REGION'] ?? 'us-east-1',
  };
}

/**
 * A fresh key prefix in the test bucket, with the collector env to drain there and a reader;
 * `where` names another bucket and prefix (`""`: the whole bucket).
 */
export function s3Target(name: string, where: { bucket?: string; prefix?: string } = {}): S3TestTarget {
  const settings = { ...s3Settings(), ...(where.bucket ? { bucket: where.bucket } : {}) };
  const prefix = where.prefix ?? `${name}-${randomBytes(4).toString('hex')}/`;
  const client = new S3Client({
    endpoint: settings.endpoint,
    forcePathStyle: true,
    region: settings.region,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A check must end, even on a storage server that stopped answering (a full test RGW did).
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000, throwOnRequestTimeout: true },
  });
  return {
    bucket: settings.bucket,
    prefix,
    env: {
      STORAGE_URL: `s3://${settings.bucket}/${prefix}`,
      S3_ENDPOINT: settings.endpoint,
      AWS_ACCESS_KEY_ID: settings.accessKeyId,
      AWS_SECRET_ACCESS_KEY: settings.secretAccessKey,
      AWS_REGION: settings.region,
    },
    client,
    reader: {
      async get(key) {
        try {
          const answer = await client.send(new GetObjectCommand({ Bucket: settings.bucket, Key: `${prefix}${key}` }));
          return Buffer.from(await answer.Body!.transformToByteArray());
        } catch (error) {
          if (error instanceof NoSuchKey || (error as { name?: string }).name === 'NoSuchKey') return undefined;
          throw error;
        }
      },
    },
  };
}

/** Every key under `prefix`, page by page. */
export async function* listKeys(client: S3Client, bucket: string, prefix: string): AsyncGenerator<string[]> {
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    yield (page.Contents ?? []).map((object) => object.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/** Deletes every object under `s3://bucket/prefix` (a test's STORAGE_URL); the count deleted. */
export async function deletePrefix(client: S3Client, storageUrl: string): Promise<number> {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(storageUrl);
  if (!match) return 0;
  const [, bucket, prefix] = match as unknown as [string, string, string];
  let deleted = 0;
  for await (const keys of listKeys(client, bucket, prefix)) {
    if (keys.length === 0) continue;
    const answer = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
    const failed = answer.Errors ?? [];
    if (failed.length > 0) throw new Error(`${failed.length} objects not deleted, e.g. ${failed[0]?.Key}: ${failed[0]?.Message}`);
    deleted += keys.length;
  }
  return deleted;
}

export function fileReader(dir: string): ObjectReader {
  return {
    async get(key) {
      try {
        return await readFile(join(dir, key));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
    },
  };
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

export interface Expected {
  annotations: Record<string, unknown>;
  dumps: Record<string, Buffer>;
}

export function expectedFrom(report: Report): Expected {
  return { annotations: report.annotations, dumps: report.dumps };
}

/** Why a crash is not stored as posted, or undefined when it is complete and byte-identical. */
export async function storedProblem(reader: ObjectReader, crashId: string, expected: Expected): Promise<string | undefined> {
  const raw = await reader.get(rawCrashKey(crashId));
  if (!raw) return 'no raw crash';
  const rawCrash = JSON.parse(raw.toString('utf8')) as Record<string, unknown> & {
    uuid: string;
    metadata: { dump_checksums: Record<string, string> };
  };
  if (rawCrash.uuid !== crashId) return `raw crash uuid ${rawCrash.uuid}`;
  for (const [key, value] of Object.entries(expected.annotations)) {
    try {
      assert.deepEqual(rawCrash[key], value);
    } catch {
      return `annotation ${key} differs: ${JSON.stringify(rawCrash[key])}`;
    }
  }
  const names = await reader.get(dumpNamesKey(crashId));
  if (!names) return 'no dump_names';
  const expectedNames = Object.keys(expected.dumps).sort();
  if (JSON.stringify((JSON.parse(names.toString('utf8')) as string[]).sort()) !== JSON.stringify(expectedNames)) {
    return `dump_names ${names.toString('utf8')}`;
  }
  for (const [name, data] of Object.entries(expected.dumps)) {
    const stored = await reader.get(dumpKey(crashId, name));
    if (!stored) return `no dump ${name}`;
    if (sha256(stored) !== sha256(data)) return `dump ${name} differs (${stored.length} vs ${data.length} bytes)`;
    if (rawCrash.metadata.dump_checksums[name] !== sha256(data)) return `dump_checksums.${name} wrong`;
  }
  return undefined;
}

/**
 * storedProblem for many crashes, a few reads at a time (thousands at once queue behind the SDK's
 * sockets and get connections reset); a read that fails is a problem of that crash, not of the check.
 */
export async function storedProblems(reader: ObjectReader, crashes: [string, Expected][], concurrency = 16): Promise<Map<string, string>> {
  const problems = new Map<string, string>();
  let next = 0;
  const checker = async () => {
    while (next < crashes.length) {
      const [crashId, expected] = crashes[next++]!;
      const problem = await storedProblem(reader, crashId, expected).catch((error: Error) => `reading it failed: ${error.message}`);
      if (problem !== undefined) problems.set(crashId, problem);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, checker));
  return problems;
}

/** Polls until the crash is stored as posted; fails with the last problem seen. */
export async function waitUntilStored(reader: ObjectReader, crashId: string, expected: Expected, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let problem: string | undefined = 'not checked';
  while (Date.now() < deadline) {
    problem = await storedProblem(reader, crashId, expected);
    if (problem === undefined) return JSON.parse((await reader.get(rawCrashKey(crashId)))!.toString('utf8')) as Record<string, unknown>;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`crash ${crashId} not stored as posted: ${problem}`);
}
