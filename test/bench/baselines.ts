/**
 * Ceilings the collector is measured against that are not HTTP servers: the disk's sequential
 * write bandwidth, and a raw @aws-sdk/client-s3 PutObject loop on the same S3 endpoint.
 */
import { DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type * as SchemaModule from '../../src/spool/schema.js';
import type * as ReaderModule from '../../src/spool/runtime/reader.js';
import type * as KeysModule from '../../src/storage/storage-keys.js';

const DIST = new URL('../../dist/', import.meta.url);
const MB = 1e6;

/**
 * Writes `totalMiB` MiB in 1 MiB writes to a new file in `dir`, fdatasync after every 8 MiB (and at
 * the end), then deletes it. Returns MB/s (10^6 bytes per second).
 */
export function diskWriteMBPerSecond(dir: string, totalMiB: number): number {
  const file = join(dir, `bench-disk-${process.pid}.tmp`);
  const chunk = randomBytes(1024 * 1024);
  const fd = openSync(file, 'w');
  const started = performance.now();
  try {
    for (let i = 1; i <= totalMiB; i++) {
      writeSync(fd, chunk);
      if (i % 8 === 0) fdatasyncSync(fd);
    }
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const seconds = (performance.now() - started) / 1000;
  rmSync(file, { force: true });
  return (totalMiB * chunk.length) / MB / seconds;
}

export interface S3Endpoint {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** An S3 client configured exactly as the collector's S3Storage configures its own. */
export function collectorLikeS3Client(s3: S3Endpoint): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
  });
}

export interface RawPutResult {
  crashes: number;
  seconds: number;
  crashesPerSecond: number;
  /** Bytes of all objects PUT, per second (MB = 10^6 bytes). */
  mbPerSecond: number;
}

/**
 * Uploads every pending crash of the spool in `spoolDir` (left as it is: nothing deleted) under
 * `prefix`, `concurrency` crashes at a time, with the same objects, keys and order as the
 * collector's drainer: dump_names, the dumps (in parallel), the raw crash last — 3 PUTs per
 * single-dump crash, each a plain PutObject (the SDK hashes the body for SigV4). Each crash's dumps are read from
 * the spool when its upload starts (as the drainer does), so memory stays bounded.
 */
export async function rawPutLoop(s3: S3Endpoint, spoolDir: string, prefix: string, concurrency: number): Promise<RawPutResult> {
  const spool = {
    ...((await import(new URL('spool/schema.js', DIST).href)) as typeof SchemaModule),
    ...((await import(new URL('spool/runtime/reader.js', DIST).href)) as typeof ReaderModule),
  };
  const keys = (await import(new URL('storage/storage-keys.js', DIST).href)) as typeof KeysModule;
  const db = spool.openSpoolDatabase(spoolDir, { durability: 'normal', create: false, readonly: true });
  const client = collectorLikeS3Client(s3);
  try {
    const reader = new spool.SpoolReader(db);
    const crashes = reader.due(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, new Set());
    const put = async (key: string, body: Buffer, contentType: string) => {
      await client.send(
        new PutObjectCommand({
          Bucket: s3.bucket,
          Key: `${prefix}${key}`,
          Body: body,
          ContentType: contentType,
          ContentLength: body.length,
        }),
      );
      bytes += body.length;
    };
    let bytes = 0;
    let next = 0;
    const started = performance.now();
    const worker = async () => {
      while (next < crashes.length) {
        const crash = crashes[next++]!;
        const dumps = (await reader.dumps(crash)) ?? [];
        await put(keys.dumpNamesKey(crash.crashId), Buffer.from(JSON.stringify(crash.dumpNames)), 'application/json');
        await Promise.all(dumps.map((dump) => put(keys.dumpKey(crash.crashId, dump.name), dump.data, 'application/octet-stream')));
        await put(keys.rawCrashKey(crash.crashId), Buffer.from(crash.rawCrashJson), 'application/json');
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const seconds = (performance.now() - started) / 1000;
    return { crashes: crashes.length, seconds, crashesPerSecond: crashes.length / seconds, mbPerSecond: bytes / MB / seconds };
  } finally {
    client.destroy();
    db.close();
  }
}

/** Deletes every object under `prefix` (1,000 per request). */
export async function deletePrefix(s3: S3Endpoint, prefix: string): Promise<void> {
  const client = collectorLikeS3Client(s3);
  try {
    for (let page = 0; page < 10_000; page++) {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, MaxKeys: 1000 }));
      const objects = (listed.Contents ?? []).map((object) => ({ Key: object.Key! }));
      if (objects.length === 0) return;
      await client.send(new DeleteObjectsCommand({ Bucket: s3.bucket, Delete: { Objects: objects, Quiet: true } }));
    }
  } finally {
    client.destroy();
  }
}
