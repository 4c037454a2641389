import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { parseReport } from '../../src/report/report-parser.js';
import { ReportRejected, type ReportLimits } from '../../src/report/report-refusal.js';
import type { ParsedReport } from '../../src/crash.js';
import { makeReport, multipart } from '../helpers/multipart.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { fuzzCase } from '../fuzz/harness.js';

const limits: ReportLimits = {
  maxBodyBytes: 1024 * 1024,
  maxDecompressedBytes: 2 * 1024 * 1024,
  maxParts: 10,
  maxAnnotations: 5,
  maxAnnotationBytes: 1024,
  maxDumpBytes: 64 * 1024,
  maxTotalDumpBytes: 100 * 1024,
  wholeBodyMaxBytes: 256 * 1024,
};
const dump = Buffer.concat([Buffer.from('MDMP'), Buffer.alloc(5000, 1)]);

type Outcome = { report: ParsedReport } | { error: unknown };
const settle = (promise: Promise<ParsedReport>): Promise<Outcome> => promise.then((report) => ({ report }), (error: unknown) => ({ error }));
/** The outcome, less where the dumps lie in the body as sent (known only when it was read whole). */
const described = (outcome: Outcome) => {
  if (!('report' in outcome)) return `${(outcome.error as Error).constructor.name}: ${String(outcome.error)}`;
  const { sentGzip: _sent, dumps, ...rest } = outcome.report;
  return JSON.stringify({ ...rest, dumps: dumps.map(({ offset: _offset, ...dump }) => dump) });
};

/** A body kept as sent must give back every dump, byte for byte, at its offset once inflated. */
function checkCutFromSent(report: ParsedReport): void {
  if (!report.sentGzip) return;
  const inflated = gunzipSync(report.sentGzip);
  for (const dump of report.dumps) {
    assert.ok(inflated.subarray(dump.offset!, dump.offset! + dump.data.length).equals(dump.data), `dump ${dump.name} at its offset in the body as sent`);
  }
}

/**
 * Parses `body` cut into `chunkSize` pieces, both ways a body can be read (whole, as small bodies
 * are, and streamed, as large ones are), and checks that both come to the same report or refusal.
 */
async function parse(body: Buffer, headers: Record<string, string>, chunkSize = 1000, parseLimits = limits): Promise<ParsedReport> {
  const chunks: Buffer[] = [];
  for (let at = 0; at < body.length; at += chunkSize) chunks.push(body.subarray(at, at + chunkSize));
  const allHeaders = { 'content-length': String(body.length), ...headers };
  const whole = await settle(parseReport(Readable.from(chunks), allHeaders, { ...parseLimits, wholeBodyMaxBytes: Number.MAX_SAFE_INTEGER }));
  const streamed = await settle(parseReport(Readable.from(chunks), allHeaders, { ...parseLimits, wholeBodyMaxBytes: 0 }));
  assert.equal(described(whole), described(streamed), 'read whole and streamed, the same body gives the same outcome');
  if ('error' in whole) throw whole.error;
  checkCutFromSent(whole.report);
  return whole.report;
}

async function rejected(promise: Promise<unknown>): Promise<ReportRejected> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ReportRejected, `expected ReportRejected, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
}

test('Breakpad multipart: annotations and the dump, bytes intact', async () => {
  const report = makeReport('breakpad', dump);
  const parsed = await parse(report.body, { 'content-type': report.contentType });
  assert.deepEqual({ ...parsed.annotations }, report.annotations);
  assert.equal(parsed.dumps.length, 1);
  assert.equal(parsed.dumps[0]!.name, 'upload_file_minidump');
  assert.ok(parsed.dumps[0]!.data.equals(dump));
  assert.equal(parsed.payload, 'multipart');
  assert.equal(parsed.compressed, false);
  assert.equal(parsed.payloadSize, report.body.length);
});

test('Crashpad: the whole body gzipped', async () => {
  const report = makeReport('crashpad', dump);
  const parsed = await parse(report.body, { 'content-type': report.contentType, 'content-encoding': 'gzip' });
  assert.equal(parsed.compressed, true);
  assert.equal(parsed.payloadSize, report.body.length);
  assert.ok(parsed.dumps[0]!.data.equals(dump));
  assert.ok(parsed.sentGzip?.equals(report.body), 'read whole, the body as sent is kept for the spool');
  assert.ok(parsed.dumps[0]!.offset! > 0);
});

test('Mozilla: JSON extra and two dumps', async () => {
  const report = makeReport('mozilla', dump, Buffer.from('MDMPsecond'));
  const parsed = await parse(report.body, { 'content-type': report.contentType });
  assert.equal(parsed.payload, 'json');
  assert.deepEqual(JSON.parse(JSON.stringify(parsed.annotations)), report.annotations);
  assert.deepEqual(parsed.dumps.map((d) => d.name).sort(), ['upload_file_minidump', 'upload_file_minidump_browser']);
});

const form = multipart([{ name: 'prod', value: 'x' }]);
const cases: [string, () => Promise<unknown>, number, string][] = [
  [
    'no content type',
    () => parse(form.body, {}), 400, 'Discarded=malformed_no_content_type'],
  [
    'wrong content type',
    () => parse(form.body, { 'content-type': 'application/json' }), 400, 'Discarded=malformed_wrong_content_type'],
  [
    'no boundary',
    () => parse(form.body, { 'content-type': 'multipart/form-data' }), 400, 'Discarded=malformed_no_boundary'],
  [
    'Content-Length: 0',
    () => parse(form.body, { 'content-type': form.contentType, 'content-length': '0' }), 400, 'Discarded=malformed_no_content_length'],
  [
    'neither Content-Length nor chunked',
    () => parseReport(Readable.from([form.body]), { 'content-type': form.contentType }, limits),
    400,
    'Discarded=malformed_no_content_length',
  ],
  [
    'unsupported encoding',
    () => parse(form.body, { 'content-type': form.contentType, 'content-encoding': 'br' }),
    400,
    'Discarded=malformed_unsupported_content_encoding',
  ],
  [
    'bad gzip',
    () => parse(form.body, { 'content-type': form.contentType, 'content-encoding': 'gzip' }), 400, 'Discarded=malformed_bad_gzip'],
  [
    'truncated body',
    () => parse(form.body.subarray(0, form.body.length - 10), { 'content-type': form.contentType }),
    400,
    'Discarded=malformed_invalid_payload_structure',
  ],
  [
    'no annotations',
    () => parse(multipart([{ name: 'upload_file_minidump', filename: 'a.dmp', data: dump }]).body, {
      'content-type': form.contentType.replace(/boundary=.*/, 'boundary=x'),
    }),
    400,
    'Discarded=malformed_invalid_payload_structure',
  ],
];

for (const [name, promise, status, body] of cases) {
  test(`rejects: ${name}`, async () => {
    const error = await rejected(promise());
    assert.equal(error.status, status);
    assert.equal(error.body, body);
  });
}

test('a chunked body needs no Content-Length', async () => {
  const parsed = await parseReport(Readable.from([form.body]), { 'content-type': form.contentType, 'transfer-encoding': 'chunked' }, limits);
  assert.deepEqual({ ...parsed.annotations }, { prod: 'x' });
});

test("a JSON extra replaces the annotations sent before it, later ones add to it, and both kinds are noted (Antenna)", async () => {
  const body = multipart([
    { name: 'before', value: 'dropped' },
    { name: 'ProductName', value: 'replaced' },
    { name: 'extra', value: '{"ProductName":"Firefox","Version":"120"}', contentType: 'application/json' },
    { name: 'after', value: 'kept' },
  ]);
  const parsed = await parse(body.body, { 'content-type': body.contentType });
  assert.deepEqual({ ...parsed.annotations }, { ProductName: 'Firefox', Version: '120', after: 'kept' });
  assert.equal(parsed.payload, 'json');
  assert.ok(parsed.notes.includes('includes annotations in both json-encoded extra and formdata parts'), parsed.notes.join('; '));

  const jsonOnly = multipart([{ name: 'extra', value: '{"ProductName":"Firefox"}', contentType: 'application/json' }]);
  assert.deepEqual((await parse(jsonOnly.body, { 'content-type': jsonOnly.contentType })).notes, []);
});

test("parts of other types get Antenna's 'unknown content type' note and are kept", async () => {
  const body = multipart([
    { name: 'prod', value: 'x' },
    { name: 'html', value: '<b>', contentType: 'text/html' },
    { name: 'upload_file_minidump', filename: 'a.dmp', data: dump },
    { name: 'log', filename: 'log.txt', data: Buffer.from('text'), contentType: 'text/plain' },
  ]);
  const parsed = await parse(body.body, { 'content-type': body.contentType });
  assert.equal(parsed.annotations['html'], '<b>');
  assert.deepEqual(parsed.dumps.map((d) => d.name), ['upload_file_minidump', 'log']);
  assert.deepEqual(parsed.notes, ['unknown content type: html text/html', 'unknown content type: log text/plain']);
});

test('a top-level multipart/mixed body is read like form-data (Antenna takes both)', async () => {
  const parsed = await parse(form.body, { 'content-type': form.contentType.replace('multipart/form-data', 'multipart/mixed') });
  assert.deepEqual({ ...parsed.annotations }, { prod: 'x' });
});

test('a dump name sent twice: the last one is kept and noted (as Antenna)', async () => {
  const second = Buffer.from('MDMPsecond');
  const body = multipart([
    { name: 'prod', value: 'x' },
    { name: 'upload_file_minidump', filename: 'a.dmp', data: dump },
    { name: 'upload_file_minidump', filename: 'b.dmp', data: second },
  ]);
  const parsed = await parse(body.body, { 'content-type': body.contentType });
  assert.equal(parsed.dumps.length, 1);
  assert.ok(parsed.dumps[0]!.data.equals(second));
  assert.deepEqual(parsed.notes, ['dump "upload_file_minidump" sent more than once; the last one is kept']);
});

test('parts after the closing boundary are ignored, also when the body is read whole (busboy would hang on them)', { timeout: 10_000 }, async () => {
  const body = Buffer.from(
    '--B\r\nContent-Disposition: form-data; name="prod"\r\n\r\nx\r\n--B--\r\n' +
      '--B\r\nContent-Disposition: form-data; name="upload_file_minidump"; filename="a"\r\n' +
      'Content-Type: application/octet-stream\r\n\r\nMDMP\r\n--B\r\nContent-Disposition: form-data; name="ver"\r\n\r\n1\r\n--B--\r\n',
  );
  for (const contentType of ['multipart/form-data; boundary=B', 'multipart/form-data; boundary="B"']) {
    const parsed = await parse(body, { 'content-type': contentType }, body.length);
    assert.deepEqual({ ...parsed.annotations }, { prod: 'x' });
    assert.equal(parsed.dumps.length, 0);
  }
});

test('a report with dumps but no annotations is malformed_no_annotations', async () => {
  const body = multipart([{ name: 'upload_file_minidump', filename: 'a.dmp', data: dump }]);
  const error = await rejected(parse(body.body, { 'content-type': body.contentType }));
  assert.equal(error.body, 'Discarded=malformed_no_annotations');
});

test('reserved and unusable dump names are refused', async () => {
  for (const name of ['raw_crash', '...']) {
    const body = multipart([{ name: 'prod', value: 'x' }, { name, filename: 'a.dmp', data: dump }]);
    const error = await rejected(parse(body.body, { 'content-type': body.contentType }));
    assert.equal(error.body, 'Discarded=malformed_invalid_dump_name');
  }
});

test('invalid JSON extra: unparsable, not an object, too deep', async () => {
  const deep = '['.repeat(100) + ']'.repeat(100);
  for (const [text, reason] of [
    ['{nope', 'invalid_json'],
    ['[1,2]', 'invalid_json_value'],
    [`{"a":${deep}}`, 'invalid_json_nesting'],
  ] as const) {
    const body = multipart([{ name: 'extra', filename: 'extra.json', data: Buffer.from(text), contentType: 'application/json' }]);
    const error = await rejected(parse(body.body, { 'content-type': body.contentType }));
    assert.equal(error.body, `Discarded=malformed_${reason}`, text.slice(0, 20));
  }
});

test('limits answer 413 the moment they are crossed', async () => {
  const big = Buffer.alloc(limits.maxDumpBytes + 1, 2);
  const tooBigDump = multipart([{ name: 'prod', value: 'x' }, { name: 'upload_file_minidump', filename: 'a', data: big }]);
  assert.equal((await rejected(parse(tooBigDump.body, { 'content-type': tooBigDump.contentType }))).body, 'Discarded=too_large_dump');

  const manyFields = multipart(Array.from({ length: 6 }, (_, i) => ({ name: `k${i}`, value: 'v' })));
  assert.equal((await rejected(parse(manyFields.body, { 'content-type': manyFields.contentType }))).body, 'Discarded=too_large_annotations');

  const longValue = multipart([{ name: 'k', value: 'v'.repeat(limits.maxAnnotationBytes + 1) }]);
  assert.equal((await rejected(parse(longValue.body, { 'content-type': longValue.contentType }))).body, 'Discarded=too_large_annotation_value');

  const bomb = gzipSync(multipart([{ name: 'k', value: 'v' }, { name: 'd', filename: 'd', data: Buffer.alloc(3 * 1024 * 1024) }]).body);
  const bombType = multipart([]).contentType;
  const bombError = await rejected(parse(bomb, { 'content-type': bombType, 'content-encoding': 'gzip' }));
  assert.equal(bombError.status, 413);

  const declared = await rejected(parse(form.body, { 'content-type': form.contentType, 'content-length': String(limits.maxBodyBytes + 1) }));
  assert.equal(declared.body, 'Discarded=too_large_body');

  const total = multipart([
    { name: 'prod', value: 'x' },
    { name: 'a', filename: 'a', data: Buffer.alloc(60 * 1024) },
    { name: 'b', filename: 'b', data: Buffer.alloc(60 * 1024) },
  ]);
  assert.equal((await rejected(parse(total.body, { 'content-type': total.contentType }))).body, 'Discarded=too_large_total_dumps');
});

test('read whole or streamed, generated hostile reports come to the same report or refusal', { timeout: 120_000 }, async () => {
  const dumps = [...loadFixtureDumps().values()].filter((data) => data.length < 200_000);
  const small: ReportLimits = { ...limits, maxParts: 12, maxAnnotations: 10, maxAnnotationBytes: 32 * 1024, maxDumpBytes: 100 * 1024, maxTotalDumpBytes: 200 * 1024 };
  const outcomes = new Set<string>();
  // 400 generated cases, and ones the fuzz run found the two ways apart on (a hang, since fixed).
  const cases = [...Array.from({ length: 400 }, (_, index) => [20261201, index] as const), [840162, 1837] as const, [840162, 1996] as const];
  for (const [seed, index] of cases) {
    const testCase = fuzzCase(seed, index, dumps);
    const headers = Object.fromEntries(Object.entries(testCase.headers).map(([name, value]) => [name.toLowerCase(), value]));
    const outcome = await parse(testCase.body, headers, 1 + (index % 7) * 4096, small).then(
      (report) => (report.sentGzip ? 'parsed, kept as sent' : 'parsed'),
      (error: unknown) => (error instanceof ReportRejected ? error.body : String(error)),
    );
    outcomes.add(outcome);
  }
  assert.ok(outcomes.size > 8, `the cases reach many outcomes: ${[...outcomes].join(', ')}`);
  assert.ok(outcomes.has('parsed, kept as sent'), 'some were kept as sent, and their dumps checked against it');
});
