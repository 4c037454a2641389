/**
 * Antenna's design as a benchmark peer: no local spool; each report is parsed and its objects are
 * saved to storage *before* the answer, as Mozilla's Antenna does (antenna/crashmover.py and
 * ext/gcs/crashstorage.py at HEAD 6f4af96): dump_names, then each dump, then the raw crash, one
 * after the other; a failed save is retried from the start up to ANTENNA_MAX_ATTEMPTS times (5),
 * ANTENNA_RETRY_SLEEP_SECONDS apart (2), then the report is answered 500 and is lost (Crashpad
 * does not retry). Parsing as the naive peer (gunzip, `Request.formData()`); the same S3 client
 * settings as the collector's, with its own retries off (the crashmover's loop is the retry policy).
 *
 * Run: `PORT=8003 S3_ENDPOINT=… S3_BUCKET=… S3_PREFIX=… AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=…
 * AWS_REGION=… node --import tsx test/bench/antenna-peer.ts` (prints `listening`).
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { readFormReport } from './form-report.js';
import { newCrashId } from '../../src/crash-id.js';
import { dumpKey, dumpNamesKey, rawCrashKey } from '../../src/storage/storage-keys.js';

const env = (name: string) => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const bucket = env('S3_BUCKET');
const prefix = process.env['S3_PREFIX'] ?? '';
const maxAttempts = Number(process.env['ANTENNA_MAX_ATTEMPTS'] ?? 5);
const retrySleepMs = Number(process.env['ANTENNA_RETRY_SLEEP_SECONDS'] ?? 2) * 1000;

const client = new S3Client({
  endpoint: env('S3_ENDPOINT'),
  forcePathStyle: true,
  region: env('AWS_REGION'),
  credentials: { accessKeyId: env('AWS_ACCESS_KEY_ID'), secretAccessKey: env('AWS_SECRET_ACCESS_KEY') },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  maxAttempts: 1,
  requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
});

async function put(key: string, body: Buffer, contentType: string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${key}`, Body: body, ContentType: contentType, ContentLength: body.length }));
}

async function saveCrash(crashId: string, rawCrash: Record<string, string>, dumps: [string, Buffer][]): Promise<void> {
  await put(dumpNamesKey(crashId), Buffer.from(JSON.stringify(dumps.map(([name]) => name))), 'application/json');
  for (const [name, data] of dumps) await put(dumpKey(crashId, name), data, 'application/octet-stream');
  await put(rawCrashKey(crashId), Buffer.from(JSON.stringify(rawCrash)), 'application/json');
}

/** True once saved; false after `maxAttempts` failed attempts (Antenna: "dropped", answer 500). */
async function saveWithRetry(crashId: string, rawCrash: Record<string, string>, dumps: [string, Buffer][]): Promise<boolean> {
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    try {
      await saveCrash(crashId, rawCrash, dumps);
      return true;
    } catch {
      if (attempt < maxAttempts) await new Promise((resolve) => setTimeout(resolve, retrySleepMs));
    }
  }
  return false;
}

const app = new Hono();
app.post('/submit', async (c) => {
  const { annotations: rawCrash, dumps } = await readFormReport(c);
  const crashId = newCrashId(new Date());
  rawCrash['uuid'] = crashId;
  rawCrash['submitted_timestamp'] = new Date().toISOString();
  if (!(await saveWithRetry(crashId, rawCrash, dumps))) return c.text('Discarded=storage_failed', 500);
  return c.text(`CrashID=bp-${crashId}\n`);
});

serve({ fetch: app.fetch, port: Number(process.env['PORT'] ?? 8003), hostname: process.env['HOST'] ?? '127.0.0.1' }, () => {
  process.stdout.write('listening\n');
});
