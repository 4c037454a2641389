/**
 * Hostile and broken requests against the real collector process: each gets a clear answer,
 * nothing of it reaches the spool, and a valid crash right after still succeeds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport, send, type Answer } from '../helpers/http-client.js';
import { makeReport, multipart, type Part } from '../helpers/multipart.js';
import { metric, scrape } from '../helpers/metrics-text.js';
import { httpHead, rawExchange, sleep } from '../helpers/raw-socket.js';

const dump = loadFixtureDumps().get('minidump2.dmp')!;
const LIMITS = {
  MAX_BODY_BYTES: '2m',
  MAX_DECOMPRESSED_BYTES: '3m',
  MAX_PARTS: '8',
  MAX_ANNOTATIONS: '5',
  MAX_ANNOTATION_BYTES: '4k',
  MAX_DUMP_BYTES: '1m',
  MAX_TOTAL_DUMP_BYTES: '1536k',
};

/**
 * A collector whose storage is blocked (a file stands where its directory should be), so every
 * spooled crash stays pending and the pending count is exactly what was spooled.
 */
async function startBlockedCollector(env: Record<string, string> = {}): Promise<CollectorProcess> {
  const root = tempDir('blocked');
  writeFileSync(join(root, 'blocker'), 'storage is blocked for this test');
  return CollectorProcess.start({
    SPOOL_DIR: tempDir('spool'),
    STORAGE_URL: `file://${join(root, 'blocker', 'crashes')}`,
    DRAIN_RETRY_BASE_SECONDS: '30',
    DRAIN_RETRY_MAX_SECONDS: '60',
    ...env,
  });
}

async function pending(collector: CollectorProcess): Promise<number> {
  return metric(await scrape(collector.url), 'crashspool_spool_crashes', { state: 'pending' });
}

function form(parts: Part[], headers: Record<string, string> = {}) {
  const built = multipart(parts);
  return { body: built.body, headers: { 'Content-Type': built.contentType, ...headers } };
}

const annotation: Part = { name: 'prod', value: 'App' };
const theDump: Part = { name: 'upload_file_minidump', filename: 'a.dmp', data: dump };
const extra = (text: string): Part => ({ name: 'extra', filename: 'extra.json', data: Buffer.from(text), contentType: 'application/json' });
const valid = form([annotation, theDump]);

interface Case {
  name: string;
  send: (url: string) => Promise<Answer>;
  status: number;
  body?: string;
}

const post = (request: { body: Buffer; headers: Record<string, string> }) => (url: string) => send(url, request.body, { headers: request.headers });

const cases: Case[] = [
  { name: 'no content type', send: post({ body: valid.body, headers: {} }), status: 400, body: 'Discarded=malformed_no_content_type' },
  { name: 'wrong content type', send: post({ body: valid.body, headers: { 'Content-Type': 'application/json' } }), status: 400, body: 'Discarded=malformed_wrong_content_type' },
  { name: 'no boundary', send: post({ body: valid.body, headers: { 'Content-Type': 'multipart/form-data' } }), status: 400, body: 'Discarded=malformed_no_boundary' },
  {
    name: 'truncated multipart',
    send: post({ body: valid.body.subarray(0, valid.body.length - 100), headers: valid.headers }),
    status: 400,
    body: 'Discarded=malformed_invalid_payload_structure',
  },
  {
    name: 'garbled multipart',
    send: post({ body: Buffer.from('this is not multipart at all\r\n'.repeat(50)), headers: valid.headers }),
    status: 400,
    body: 'Discarded=malformed_invalid_payload_structure',
  },
  { name: 'bad gzip', send: post({ body: valid.body, headers: { ...valid.headers, 'Content-Encoding': 'gzip' } }), status: 400, body: 'Discarded=malformed_bad_gzip' },
  {
    name: 'truncated gzip',
    send: post({ body: gzipSync(valid.body).subarray(0, 500), headers: { ...valid.headers, 'Content-Encoding': 'gzip' } }),
    status: 400,
    body: 'Discarded=malformed_bad_gzip',
  },
  {
    name: 'unsupported content encoding',
    send: post({ body: valid.body, headers: { ...valid.headers, 'Content-Encoding': 'br' } }),
    status: 400,
    body: 'Discarded=malformed_unsupported_content_encoding',
  },
  { name: 'invalid JSON extra', send: post(form([extra('{"ProductName": "Firefox"'), theDump])), status: 400, body: 'Discarded=malformed_invalid_json' },
  { name: 'JSON extra not an object', send: post(form([extra('"Firefox"'), theDump])), status: 400, body: 'Discarded=malformed_invalid_json_value' },
  {
    name: 'JSON extra nested too deep',
    send: post(form([extra(`{"a":${'{"b":'.repeat(100)}1${'}'.repeat(100)}}`), theDump])),
    status: 400,
    body: 'Discarded=malformed_invalid_json_nesting',
  },
  { name: 'no annotations', send: post(form([theDump])), status: 400, body: 'Discarded=malformed_no_annotations' },
  {
    name: 'invalid dump name',
    send: post(form([annotation, { name: '-.-', filename: 'a.dmp', data: dump }])),
    status: 400,
    body: 'Discarded=malformed_invalid_dump_name',
  },
  {
    name: 'reserved dump name',
    send: post(form([annotation, { name: 'raw_crash', filename: 'a.dmp', data: dump }])),
    status: 400,
    body: 'Discarded=malformed_invalid_dump_name',
  },
  { name: 'empty body (Content-Length: 0)', send: post({ body: Buffer.alloc(0), headers: valid.headers }), status: 400, body: 'Discarded=malformed_no_content_length' },
  { name: 'wrong method', send: (url) => send(url, undefined, { method: 'GET' }), status: 405 },
  { name: 'wrong method with a body', send: (url) => send(url, valid.body, { method: 'PUT', headers: valid.headers }), status: 405 },
  // Limits: each answers 413 and names the limit.
  {
    name: 'declared body over MAX_BODY_BYTES',
    // Answered from the headers alone. Only the first bytes are sent: a client still writing 2 MiB
    // when the server closes after its answer may see a reset instead (kernel-timing dependent).
    send: async (url) => {
      const exchange = await rawExchange(Number(new URL(url).port), (socket) => {
        socket.write(httpHead('/submit', { ...valid.headers, 'Content-Length': 2 * 1024 * 1024 + 1, Connection: 'close' }));
        socket.write(Buffer.alloc(64 * 1024));
      });
      const [head = '', body = ''] = exchange.response.split('\r\n\r\n');
      return { status: Number(head.split(' ')[1]), body, headers: {} };
    },
    status: 413,
    body: 'Discarded=too_large_body',
  },
  {
    name: 'chunked body over MAX_BODY_BYTES',
    send: (url) => send(url, Buffer.concat([multipart([annotation]).body, Buffer.alloc(2 * 1024 * 1024 + 1)]), { headers: valid.headers, chunkSize: 65536 }),
    status: 413,
    body: 'Discarded=too_large_body',
  },
  {
    name: 'decompressed body over MAX_DECOMPRESSED_BYTES',
    send: post({
      body: gzipSync(form([annotation, ...[1, 2, 3, 4].map((i) => ({ name: `d${i}`, filename: 'd', data: Buffer.alloc(900 * 1024) }))]).body),
      headers: { ...valid.headers, 'Content-Encoding': 'gzip' },
    }),
    status: 413,
  },
  {
    name: 'too many parts',
    send: post(form([annotation, ...Array.from({ length: 8 }, (_, i) => ({ name: `d${i}`, filename: 'd', data: dump }))])),
    status: 413,
    body: 'Discarded=too_large_parts',
  },
  {
    name: 'too many annotations',
    send: post(form(Array.from({ length: 6 }, (_, i) => ({ name: `k${i}`, value: 'v' })))),
    status: 413,
    body: 'Discarded=too_large_annotations',
  },
  {
    name: 'annotation value too long',
    send: post(form([{ name: 'k', value: 'v'.repeat(4097) }, theDump])),
    status: 413,
    body: 'Discarded=too_large_annotation_value',
  },
  {
    name: 'JSON extra too long',
    send: post(form([extra(JSON.stringify({ ProductName: 'x'.repeat(5000) })), theDump])),
    status: 413,
    body: 'Discarded=too_large_annotation_value',
  },
  {
    name: 'dump over MAX_DUMP_BYTES',
    send: post(form([annotation, { name: 'upload_file_minidump', filename: 'a', data: Buffer.alloc(1024 * 1024 + 1) }])),
    status: 413,
    body: 'Discarded=too_large_dump',
  },
  {
    name: 'dumps over MAX_TOTAL_DUMP_BYTES',
    send: post(form([annotation, { name: 'a', filename: 'a', data: Buffer.alloc(800 * 1024) }, { name: 'b', filename: 'b', data: Buffer.alloc(800 * 1024) }])),
    status: 413,
    body: 'Discarded=too_large_total_dumps',
  },
];

describe('bad input: every malformed kind and every limit', () => {
  let collector: CollectorProcess;
  before(async () => {
    collector = await startBlockedCollector(LIMITS);
  });
  after(() => collector.stop());

  for (const testCase of cases) {
    test(`${testCase.name} → ${testCase.status}, nothing spooled, a valid crash still succeeds`, async () => {
      const before = await pending(collector);
      const answer = await testCase.send(`${collector.url}`);
      assert.equal(answer.status, testCase.status, answer.body);
      if (testCase.body) assert.equal(answer.body, testCase.body);
      assert.equal(await pending(collector), before, 'nothing of the rejected request was spooled');

      crashIdFrom(await postReport(collector.url, makeReport('crashpad', dump)));
      assert.equal(await pending(collector), before + 1);
    });
  }

  test("a body longer than its Content-Length: the collector's own 400 reaches the client, then the connection closes", async () => {
    const before = await pending(collector);
    const head = httpHead('/submit', { 'Content-Type': valid.headers['Content-Type']!, 'Content-Length': valid.body.length - 200 });
    // The surplus arrives with the declared body: Node reads it as a broken second request while
    // the first is still being answered; its bare 400 used to cut off the collector's answer.
    const together = await rawExchange(collector.port, (socket) => void socket.write(Buffer.concat([Buffer.from(head), valid.body])));
    const [answerHead, answerBody] = together.response.split('\r\n\r\n');
    assert.match(answerHead!, /^HTTP\/1\.1 400 Bad Request\r\n/, together.response);
    assert.match(answerHead!, /\r\nConnection: close/i);
    assert.equal(answerBody, 'Discarded=malformed_invalid_payload_structure', 'one answer, the collector\'s');
    assert.ok(together.closedByServer);

    // The surplus arrives after the answer went out: that answer stands, the surplus gets Node's own 400.
    const later = await rawExchange(collector.port, async (socket) => {
      socket.write(Buffer.concat([Buffer.from(head), valid.body.subarray(0, -200)]));
      await sleep(200);
      socket.write(valid.body.subarray(-200));
    });
    assert.match(later.response, /^HTTP\/1\.1 400 Bad Request\r\n[^]*?\r\n\r\nDiscarded=malformed_invalid_payload_structure(HTTP\/1\.1 400 Bad Request\r\nConnection: close\r\n\r\n)?$/);
    assert.ok(later.closedByServer);
    assert.equal(await pending(collector), before);
  });

  test('a binary part without a filename is a dump, its bytes kept (busboy and Antenna both treat octet-stream as a file)', async () => {
    const before = await pending(collector);
    const request = form([annotation, { name: 'upload_file_minidump', value: 'MDMP\u0000\u00ff', contentType: 'application/octet-stream' }]);
    crashIdFrom(await send(collector.url, request.body, { headers: request.headers }));
    assert.equal(await pending(collector), before + 1);
  });

  test('a body shorter than its Content-Length, then the client hangs up: nothing spooled', async () => {
    const before = await pending(collector);
    const exchange = await rawExchange(collector.port, async (socket) => {
      socket.write(httpHead('/submit', { 'Content-Type': valid.headers['Content-Type']!, 'Content-Length': valid.body.length + 500 }));
      socket.write(valid.body);
      await sleep(200);
      socket.end();
    });
    assert.ok(exchange.closedByServer);
    assert.doesNotMatch(exchange.response, /CrashID/);
    assert.equal(await pending(collector), before);
    crashIdFrom(await postReport(collector.url, makeReport('breakpad', dump)));
  });
});

describe('slow and abusive clients', () => {
  let collector: CollectorProcess;
  before(async () => {
    collector = await startBlockedCollector({ HEADERS_TIMEOUT_SECONDS: '1', IDLE_TIMEOUT_SECONDS: '1', REQUEST_TIMEOUT_SECONDS: '3' });
  });
  after(() => collector.stop());

  test('slowloris: headers dribbled byte by byte are cut off by the headers timeout', async () => {
    const head = httpHead('/submit', { 'Content-Type': valid.headers['Content-Type']!, 'Content-Length': valid.body.length, 'X-Padding': 'x'.repeat(200) });
    const exchange = await rawExchange(
      collector.port,
      async (socket) => {
        for (const byte of head) {
          if (socket.destroyed) return;
          socket.write(byte);
          await sleep(100);
        }
      },
      15_000,
    );
    assert.ok(exchange.closedByServer, 'the server closed the connection');
    assert.ok(exchange.ms < 4000, `closed after ${exchange.ms} ms`);
  });

  test('a stalled upload is closed by the idle timeout and leaves nothing in the spool', async () => {
    const before = await pending(collector);
    const exchange = await rawExchange(collector.port, (socket) => {
      socket.write(httpHead('/submit', { 'Content-Type': valid.headers['Content-Type']!, 'Content-Length': valid.body.length }));
      socket.write(valid.body.subarray(0, 3000));
    });
    assert.ok(exchange.closedByServer);
    assert.ok(exchange.ms < 4000, `closed after ${exchange.ms} ms`);
    assert.equal(await pending(collector), before);
  });

  test('an upload trickling below the request timeout is closed at the request timeout', async () => {
    const before = await pending(collector);
    const exchange = await rawExchange(collector.port, async (socket) => {
      socket.write(httpHead('/submit', { 'Content-Type': valid.headers['Content-Type']!, 'Content-Length': valid.body.length }));
      for (let at = 0; at < valid.body.length && !socket.destroyed; at += 100) {
        socket.write(valid.body.subarray(at, at + 100));
        await sleep(300);
      }
    }, 15_000);
    assert.ok(exchange.closedByServer);
    assert.ok(exchange.ms < 6000, `closed after ${exchange.ms} ms`);
    assert.equal(await pending(collector), before);
  });

  test('a client that disconnects mid-upload leaves nothing in the spool', async () => {
    const before = await pending(collector);
    await rawExchange(collector.port, async (socket) => {
      socket.write(httpHead('/submit', { 'Content-Type': valid.headers['Content-Type']!, 'Content-Length': valid.body.length }));
      socket.write(valid.body.subarray(0, 5000));
      await sleep(100);
      socket.destroy();
    }, 2000);
    await sleep(200);
    assert.equal(await pending(collector), before);
    crashIdFrom(await postReport(collector.url, makeReport('mozilla', dump)));
    assert.equal(await pending(collector), before + 1);
  });
});
