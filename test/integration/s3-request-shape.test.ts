/**
 * The requests crashspool's S3 client sends have the shape Google Cloud Storage's S3-compatible XML
 * API accepts (docs/ANTENNA.md, *Google Cloud Storage*), so that S3_ENDPOINT=https://storage.googleapis.com
 * with HMAC keys keeps working: SigV4 with the body's SHA-256 (never an `aws-chunked` body, a
 * streaming or trailing checksum, or an `x-amz-checksum-*` / `x-amz-sdk-checksum-algorithm` header,
 * which GCS refuses since the AWS SDKs began adding them by default), a Content-Length on every
 * body, path-style keys. Seen from a real collector process (a crash drained, and `check`'s probe)
 * by a server on loopback that records each request and answers as S3 does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CollectorProcess, MAIN, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport } from '../helpers/http-client.js';
import { makeReport } from '../helpers/multipart.js';
import { until } from '../helpers/announced.js';

interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A bucket in memory that records every request. */
async function recordingS3(): Promise<{ url: string; requests: Recorded[]; close(): Promise<void> }> {
  const requests: Recorded[] = [];
  const objects = new Map<string, Buffer>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = new URL(req.url ?? '/', 'http://s3').pathname;
      requests.push({ method: req.method ?? '', path, headers: req.headers, body });
      if (req.method === 'PUT') {
        objects.set(path, body);
        res.writeHead(200, { ETag: `"${createHash('md5').update(body).digest('hex')}"` }).end();
      } else if (req.method === 'GET' && objects.has(path)) {
        res.writeHead(200, { 'Content-Length': objects.get(path)!.length }).end(objects.get(path));
      } else if (req.method === 'DELETE') {
        objects.delete(path);
        res.writeHead(204).end();
      } else if (req.method === 'HEAD') {
        res.writeHead(200).end();
      } else {
        res.writeHead(404, { 'Content-Type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');

function shapeProblems(request: Recorded): string[] {
  const { method, path, headers, body } = request;
  const problems: string[] = [];
  const say = (problem: string) => problems.push(`${method} ${path}: ${problem}`);
  if (/aws-chunked/i.test(String(headers['content-encoding'] ?? ''))) say('aws-chunked body');
  if (headers['transfer-encoding']) say(`Transfer-Encoding ${headers['transfer-encoding']}`);
  for (const name of Object.keys(headers)) {
    if (name.startsWith('x-amz-checksum-') || name === 'x-amz-sdk-checksum-algorithm' || name === 'x-amz-trailer' || name === 'x-amz-decoded-content-length') say(`header ${name}`);
  }
  const declared = String(headers['x-amz-content-sha256'] ?? '');
  if (!/^[0-9a-f]{64}$/.test(declared)) say(`x-amz-content-sha256 is "${declared}", not the body's SHA-256`);
  else if (declared !== createHash('sha256').update(body).digest('hex')) say('x-amz-content-sha256 does not match the body');
  if (!String(headers['authorization'] ?? '').startsWith('AWS4-HMAC-SHA256 ')) say('not signed with SigV4');
  if (method === 'PUT' && headers['content-length'] !== String(body.length)) say(`Content-Length ${headers['content-length']} for ${body.length} bytes`);
  if (method !== 'PUT' && body.length === 0 && declared !== EMPTY_SHA256) say('an empty body not hashed as empty');
  if (!path.startsWith('/gcs-bucket')) say('not path-style');
  return problems;
}

test('GCS XML API request shape: a drained crash and the check probe send no aws-chunked body, no checksum headers or trailers, SigV4 over the body, path-style', async (t) => {
  const s3 = await recordingS3();
  t.after(() => s3.close());
  const env = {
    STORAGE_URL: 's3://gcs-bucket/prod',
    S3_ENDPOINT: s3.url,
    AWS_ACCESS_KEY_ID: 'GOOG1EXAMPLEHMACKEY',
    AWS_SECRET_ACCESS_KEY: 'hmac-secret',
    AWS_REGION: 'auto',
  };
  const collector = await CollectorProcess.start({ ...env, SPOOL_DIR: tempDir('request-shape') });
  t.after(() => collector.stop());
  const [first, second] = [...loadFixtureDumps().values()];
  // Firefox's style: two dumps and a JSON extra; the drainer's PUTs are what GCS would see.
  const crashId = crashIdFrom(await postReport(collector.url, makeReport('mozilla', first!, second!)));
  await until('the raw crash is stored', async () => s3.requests.some((request) => request.method === 'PUT' && request.path.includes('/raw_crash/') && request.path.endsWith(crashId)));

  // Not spawnSync: the recording server answers from this process's event loop.
  await promisify(execFile)(process.execPath, [MAIN, 'check'], {
    env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: '0', SPOOL_DIR: tempDir('request-shape-check'), ...env },
  });

  const methods = new Set(s3.requests.map((request) => request.method));
  assert.deepEqual([...methods].sort(), ['DELETE', 'GET', 'HEAD', 'PUT'], 'uploads, the heartbeat and the probe were all seen');
  assert.ok(s3.requests.filter((request) => request.method === 'PUT').length >= 5, `dump_names, two dumps, the raw crash, the probe: ${s3.requests.map((request) => `${request.method} ${request.path}`).join(', ')}`);
  assert.deepEqual(s3.requests.flatMap(shapeProblems), []);
  t.diagnostic(`${s3.requests.length} requests checked: ${[...methods].sort().join(', ')}`);
});
