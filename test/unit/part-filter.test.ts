/**
 * The part filter: what it does to header blocks, that part data passes untouched, and that its
 * output does not depend on how the body is cut into chunks (checked on generated hostile bodies,
 * cut whole, into single bytes and at random places), and that a header dribbled byte by byte is
 * not joined again for every byte. The rewriter fed by hand (bodies read whole) matches the stream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { isPlainHeaderBlock, PartFilter, PartRewriter, rewriteHeaderBlock } from '../../src/report/part-filter.js';
import { rawMultipart } from '../helpers/multipart.js';
import { seededRandom } from '../helpers/random.js';
import { fuzzCase } from '../fuzz/harness.js';

async function filter(body: Buffer, boundary: string, cuts: number[] = [body.length], maxParts = 1000): Promise<{ out: Buffer; notes: string[]; kept: number; error?: Error }> {
  const parts = new PartFilter({ boundary, maxParts, onTooManyParts: () => new Error('too many parts') });
  const out: Buffer[] = [];
  parts.on('data', (chunk: Buffer) => out.push(chunk));
  let error: Error | undefined;
  parts.on('error', (e: Error) => (error = e));
  const closed = new Promise((resolve) => parts.on('close', resolve));
  let at = 0;
  for (const size of cuts) {
    parts.write(body.subarray(at, at + size));
    at += size;
  }
  if (at < body.length) parts.write(body.subarray(at));
  parts.end();
  await closed;
  return { out: Buffer.concat(out), notes: parts.notes, kept: parts.partsKept, ...(error ? { error } : {}) };
}

const B = 'pfBoundary';

test('part data passes untouched; only header blocks are rewritten', async () => {
  const data = Buffer.from('MDMP\r\n\r\nContent-Disposition: attachment; name="x"\r\n\r\n--pfBoundar');
  const body = rawMultipart(
    [
      { headers: ['Content-Disposition: attachment; name="upload_file_minidump"; filename="a"', 'Content-Type: application/octet-stream'], body: data },
      { headers: [], body: Buffer.from('dropped') },
      { headers: ['Content-Disposition: form-data; name="k"', 'Content-Type: text/plain; charset=x-nope'], body: Buffer.from('v') },
    ],
    B,
  );
  const { out, notes, kept } = await filter(body, B);
  const expected = rawMultipart(
    [
      { headers: ['Content-Disposition: form-data; name="upload_file_minidump"; filename="a"', 'Content-Type: application/octet-stream'], body: data },
      { headers: ['Content-Disposition: form-data; name="k"', 'Content-Type: text/plain; charset=utf-8'], body: Buffer.from('v') },
    ],
    B,
  );
  assert.equal(out.toString('latin1'), expected.toString('latin1'));
  assert.equal(kept, 2);
  assert.deepEqual(notes, ['read a Content-Disposition: attachment part as form-data', 'dropped a part without headers', 'decoded a part declared as charset x-nope as UTF-8']);
});

test('every part counts towards the parts limit, dropped ones too', async () => {
  const body = rawMultipart(Array.from({ length: 4 }, () => ({ headers: [], body: Buffer.from('x') })), B);
  assert.equal((await filter(body, B, [body.length], 3)).error?.message, 'too many parts');
  assert.equal((await filter(body, B, [body.length], 4)).error, undefined);
});

test('the output does not depend on where the body is cut (generated hostile bodies)', async () => {
  const dumps = [Buffer.from('MDMPsmall dump\r\n--not a boundary'), Buffer.alloc(3000, 7)];
  const random = seededRandom(7);
  const seen = { changed: 0, unchanged: 0 };
  for (let index = 0; index < 300; index += 1) {
    const testCase = fuzzCase(11, index, dumps);
    const boundary = /boundary="?([^";]+)"?/.exec(testCase.headers['Content-Type']!)![1]!;
    let body = testCase.body;
    if (testCase.headers['Content-Encoding']) {
      try {
        body = gunzipSync(body);
      } catch {
        continue;
      }
    }
    const whole = await filter(body, boundary);
    const bytes = await filter(body, boundary, Array.from({ length: body.length }, () => 1));
    const cuts: number[] = [];
    for (let left = body.length; left > 0; ) {
      const size = 1 + Math.floor(random() * 64);
      cuts.push(size);
      left -= size;
    }
    const randomly = await filter(body, boundary, cuts);
    // As a body read whole goes through: the rewriter fed by hand, in one call.
    const pieces: Buffer[] = [];
    const rewriter = new PartRewriter({ boundary, maxParts: 1000, onTooManyParts: () => new Error('too many parts') }, (bytes) => pieces.push(bytes));
    rewriter.writeWhole(body);
    rewriter.end();
    const label = `case ${index}: ${testCase.steps.join(' | ')}`;
    assert.ok(whole.out.equals(bytes.out), `${label}: 1-byte chunks`);
    assert.ok(whole.out.equals(randomly.out), `${label}: random chunks`);
    assert.ok(whole.out.equals(Buffer.concat(pieces)), `${label}: by hand, in one call`);
    if (!rewriter.changed) assert.ok(body.equals(whole.out), `${label}: said unchanged, but changed`);
    seen[rewriter.changed ? 'changed' : 'unchanged'] += 1;
    assert.deepEqual(bytes.notes, whole.notes, label);
    assert.deepEqual(rewriter.notes, whole.notes, label);
  }
  assert.ok(seen.changed > 0 && seen.unchanged > 0, `both kinds of body among the cases: ${JSON.stringify(seen)}`);
});

test('a 16 KiB header dribbled byte by byte is joined once, not once per byte', async () => {
  const long = { headers: [`Content-Disposition: form-data; name="k"`, `X-Pad: ${'a'.repeat(16_000)}`], body: Buffer.from('v') };
  const body = rawMultipart(Array.from({ length: 20 }, () => long), B);
  // Counts the bytes every Buffer.concat copies: joining the held header on each byte would copy
  // about 20 × 16 KiB² / 2 = 2.6 GB; joining it once per block copies about the body's size.
  const concat = Buffer.concat;
  let copied = 0;
  Buffer.concat = ((list: readonly Uint8Array[], totalLength?: number) => {
    const joined = concat(list, totalLength);
    copied += joined.length;
    return joined;
  }) as typeof Buffer.concat;
  try {
    const { kept } = await filter(body, B, Array.from({ length: body.length }, () => 1));
    assert.equal(kept, 20);
  } finally {
    Buffer.concat = concat;
  }
  assert.ok(copied < body.length * 10, `${copied} bytes copied for a ${body.length}-byte body`);
});

/** Header blocks built from the pieces that decide what rewriteHeaderBlock does, near misses included. */
function headerBlock(random: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const odd = ['', ' ', '\t', '\r', '\n', '\x00', '\x07', '\x0b', '\x1f', '\x7f', '\xe9', ';', '"', ':'];
  const disposition = () =>
    `${pick(['Content-Disposition', 'content-disposition', 'CONTENT-DISPOSITION', 'Content-Dispositio', 'X-Content-Disposition'])}:` +
    `${pick(['', ' ', '\t', '  '])}${pick(['form-data', 'FORM-DATA', 'attachment', 'inline', 'form-dat', 'formdata', ''])}${pick(['', ' ', '\t', pick(odd)])}` +
    pick(['', '; name="prod"', '; name="upload_file_minidump"; filename="a.dmp"', `; name="x${pick(odd)}y"`, ';', '; name=a; filename*=utf-8\'\'b']);
  const contentType = () =>
    `${pick(['Content-Type', 'content-type', 'Content-Typ'])}:${pick(['', ' '])}` +
    pick(['text/plain', 'application/octet-stream', 'text/plain; charset=utf-8', 'text/plain; charset=shift_jis', 'text/plain;charset="koi8-r"', `text/${pick(odd)}plain`]);
  const other = () => pick(['Content-Transfer-Encoding: binary', 'X-Thing: 1', '', pick(odd)]);
  if (random() < 0.05) return '';
  // Most blocks open with a disposition, as real ones do, so that plain ones come up often.
  const lines = [random() < 0.7 ? disposition() : pick([contentType, other])()];
  const more = Math.floor(random() * 3);
  for (let i = 0; i < more; i++) lines.push(pick([disposition, contentType, contentType, other])());
  return lines.join(pick(['\r\n', '\r\n', '\r\n', '\n', '\r']));
}

test('a header block taken as plain is exactly one the full rewrite leaves alone and notes nothing on (generated blocks)', () => {
  const random = seededRandom(20261202);
  let plain = 0;
  let changedOrDropped = 0;
  for (let i = 0; i < 50_000; i++) {
    const block = headerBlock(random);
    const notes: string[] = [];
    const rewritten = rewriteHeaderBlock(block, notes);
    if (isPlainHeaderBlock(block)) {
      plain += 1;
      assert.equal(rewritten, block, JSON.stringify(block));
      assert.deepEqual(notes, [], JSON.stringify(block));
    } else if (rewritten !== block) {
      changedOrDropped += 1;
    }
  }
  // Both sides well covered, or the check above proves little.
  assert.ok(plain > 1_000, `plain blocks generated: ${plain}`);
  assert.ok(changedOrDropped > 10_000, `blocks changed or dropped: ${changedOrDropped}`);
});

test('what a client usually sends is plain; a charset, a control byte or a third line is not', () => {
  for (const block of [
    'Content-Disposition: form-data; name="prod"',
    'Content-Disposition: form-data; name="upload_file_minidump"; filename="a.dmp"\r\nContent-Type: application/octet-stream',
    'content-disposition:form-data',
  ]) assert.ok(isPlainHeaderBlock(block), block);
  for (const block of [
    '',
    'Content-Disposition: form-data; name="a"\r\nContent-Type: text/plain; charset=utf-8',
    'Content-Disposition: form-data; name="a\x01"',
    'Content-Disposition: form-data; name="a"\nContent-Type: text/plain',
    'Content-Disposition: attachment; name="a"',
    'Content-Disposition: form-data; name="a"\r\nContent-Type: text/plain\r\nX-Other: 1',
    'Content-Type: text/plain\r\nContent-Disposition: form-data; name="a"',
  ]) assert.ok(!isPlainHeaderBlock(block), JSON.stringify(block));
});
