/**
 * Every limit answers its own `413 Discarded=too_large_<limit>` wherever in the body it is
 * crossed — in an annotation, in the middle of a dump, in a later dump, after the form — with
 * Content-Length and chunked, plain and gzipped; and nothing of the refused report is stored.
 * (A limit crossed mid-dump used to be answered 400 invalid_payload_structure: destroying busboy
 * fired the open file stream's error first.) Each limit runs against a collector where only that
 * limit is small, so it is the one crossed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { send } from '../helpers/http-client.js';
import { rawMultipart, type RawPart } from '../helpers/multipart.js';
import { metric, scrape } from '../helpers/metrics-text.js';

const BOUNDARY = 'limitBoundary7';
const KB = 1024;
const text = (name: string, value: string): RawPart => ({ headers: [`Content-Disposition: form-data; name="${name}"`], body: Buffer.from(value) });
const file = (name: string, size: number): RawPart => ({
  headers: [`Content-Disposition: form-data; name="${name}"; filename="${name}.dmp"`, 'Content-Type: application/octet-stream'],
  // Random bytes: gzip cannot shrink them, so the compressed body crosses the limits where the plain one does.
  body: Buffer.concat([Buffer.from('MDMP'), randomBytes(size - 4)]),
});
const annotations = [text('prod', 'LimitApp'), text('ver', '1')];
/** Text gzip cannot shrink much, so a long annotation crosses the compressed-body limit too. */
const noise = (size: number) => randomBytes(size).toString('base64').slice(0, size);

interface Offset {
  where: string;
  body: Buffer;
}

interface LimitCase {
  limit: string;
  env: Record<string, string>;
  reason: string;
  offsets: Offset[];
  transports: Transport[];
}

type Transport = 'length' | 'chunked' | 'gzip-length' | 'gzip-chunked';
const ALL: Transport[] = ['length', 'chunked', 'gzip-length', 'gzip-chunked'];
const form = (parts: RawPart[], epilogue = '') => rawMultipart(parts, BOUNDARY, { epilogue });

const cases: LimitCase[] = [
  {
    limit: 'MAX_BODY_BYTES',
    env: { MAX_BODY_BYTES: '96k' },
    reason: 'too_large_body',
    offsets: [
      { where: 'in the first annotation', body: form([text('prod', noise(130 * KB)), file('upload_file_minidump', 10 * KB)]) },
      { where: 'in the middle of the dump', body: form([...annotations, file('upload_file_minidump', 150 * KB)]) },
      { where: 'in the second dump', body: form([...annotations, file('upload_file_minidump', 60 * KB), file('second', 60 * KB)]) },
      { where: 'after the closing boundary', body: form([...annotations, file('upload_file_minidump', 90 * KB)], noise(30 * KB)) },
    ],
    // With Content-Length the declared size is refused before any byte is read (bad-input tests).
    transports: ['chunked', 'gzip-chunked'],
  },
  {
    limit: 'MAX_DECOMPRESSED_BYTES',
    env: { MAX_DECOMPRESSED_BYTES: '96k' },
    reason: 'too_large_decompressed_body',
    offsets: [
      { where: 'in the first annotation', body: form([text('prod', 'x'.repeat(100 * KB)), file('upload_file_minidump', 10 * KB)]) },
      { where: 'in the middle of the dump', body: form([...annotations, file('upload_file_minidump', 150 * KB)]) },
      { where: 'in the second dump', body: form([...annotations, file('upload_file_minidump', 60 * KB), file('second', 60 * KB)]) },
      { where: 'after the closing boundary', body: form([...annotations, file('upload_file_minidump', 90 * KB)], 'e'.repeat(20 * KB)) },
    ],
    transports: ['gzip-length', 'gzip-chunked'],
  },
  {
    limit: 'MAX_DUMP_BYTES',
    env: { MAX_DUMP_BYTES: '64k' },
    reason: 'too_large_dump',
    offsets: [
      { where: 'in the first dump', body: form([...annotations, file('upload_file_minidump', 100 * KB)]) },
      { where: 'in a later dump', body: form([...annotations, file('upload_file_minidump', 30 * KB), file('second', 65 * KB), text('late', 'v')]) },
      { where: 'in a dump before any annotation', body: form([file('upload_file_minidump', 65 * KB + 1), ...annotations]) },
    ],
    transports: ALL,
  },
  {
    limit: 'MAX_TOTAL_DUMP_BYTES',
    env: { MAX_TOTAL_DUMP_BYTES: '96k' },
    reason: 'too_large_total_dumps',
    offsets: [
      { where: 'in the middle of the second dump', body: form([...annotations, file('upload_file_minidump', 60 * KB), file('second', 60 * KB)]) },
      { where: 'in the third dump', body: form([...annotations, file('a', 40 * KB), file('b', 40 * KB), file('c', 40 * KB), text('late', 'v')]) },
    ],
    transports: ALL,
  },
  {
    limit: 'MAX_ANNOTATION_BYTES',
    env: { MAX_ANNOTATION_BYTES: '4k' },
    reason: 'too_large_annotation_value',
    offsets: [
      { where: 'in the first annotation', body: form([text('prod', 'x'.repeat(4 * KB + 1)), file('upload_file_minidump', 10 * KB)]) },
      { where: 'in an annotation after the dump', body: form([...annotations, file('upload_file_minidump', 50 * KB), text('late', 'y'.repeat(8 * KB))]) },
      {
        where: 'in a JSON extra part',
        body: form([
          { headers: ['Content-Disposition: form-data; name="extra"; filename="extra.json"', 'Content-Type: application/json'], body: Buffer.from(JSON.stringify({ ProductName: 'x'.repeat(5 * KB) })) },
          file('upload_file_minidump', 10 * KB),
        ]),
      },
    ],
    transports: ALL,
  },
  {
    limit: 'MAX_PARTS',
    env: { MAX_PARTS: '6' },
    reason: 'too_large_parts',
    offsets: [
      { where: 'the seventh part an annotation', body: form([...annotations, file('upload_file_minidump', 10 * KB), ...[1, 2, 3, 4].map((i) => text(`k${i}`, 'v'))]) },
      { where: 'the seventh part a dump', body: form([...annotations, ...[1, 2, 3, 4, 5].map((i) => file(`d${i}`, 5 * KB))]) },
      { where: 'parts that are dropped count too', body: form([...annotations, file('upload_file_minidump', 10 * KB), ...[1, 2, 3, 4].map(() => ({ headers: [], body: Buffer.from('no headers') }))]) },
    ],
    transports: ALL,
  },
  {
    limit: 'MAX_ANNOTATIONS',
    env: { MAX_ANNOTATIONS: '4' },
    reason: 'too_large_annotations',
    offsets: [
      { where: 'before any dump', body: form([...[1, 2, 3, 4, 5].map((i) => text(`k${i}`, 'v')), file('upload_file_minidump', 10 * KB)]) },
      { where: 'after the dump', body: form([...annotations, file('upload_file_minidump', 50 * KB), ...[1, 2, 3].map((i) => text(`k${i}`, 'v'))]) },
    ],
    transports: ALL,
  },
];

function request(body: Buffer, transport: Transport) {
  const gzip = transport.startsWith('gzip');
  const headers: Record<string, string> = { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}` };
  if (gzip) headers['Content-Encoding'] = 'gzip';
  return { body: gzip ? gzipSync(body) : body, options: { headers, ...(transport.endsWith('chunked') ? { chunkSize: 8 * KB } : {}) } };
}

const accepted = (text: string) => [...text.matchAll(/^crashspool_crashes_accepted_total\{[^}]*\} (\S+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);

for (const limitCase of cases) {
  describe(`I4: ${limitCase.limit}: ${limitCase.reason} wherever it is crossed`, () => {
    let collector: CollectorProcess;
    before(async () => {
      collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('limits-spool'), STORAGE_URL: `file://${tempDir('limits-files')}`, SPOOL_DURABILITY: 'normal', ...limitCase.env });
    });
    after(() => collector.stop());

    for (const offset of limitCase.offsets) {
      for (const transport of limitCase.transports) {
        test(`${offset.where}, ${transport}`, async () => {
          const metricsBefore = await scrape(collector.url);
          const { body, options } = request(offset.body, transport);
          const answer = await send(collector.url, body, options);
          assert.equal(answer.status, 413, answer.body);
          assert.equal(answer.body, `Discarded=${limitCase.reason}`);
          const metricsAfter = await scrape(collector.url);
          assert.equal(accepted(metricsAfter), accepted(metricsBefore), 'nothing accepted');
          assert.equal(metric(metricsAfter, 'crashspool_crashes_rejected_total', { reason: limitCase.reason }), metric(metricsBefore, 'crashspool_crashes_rejected_total', { reason: limitCase.reason }) + 1);
          assert.equal(metric(metricsAfter, 'crashspool_spool_crashes', { state: 'pending' }), 0, 'nothing spooled');
        });
      }
    }
  });
}
