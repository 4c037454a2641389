/**
 * Every odd part shape has one defined answer (docs/PROTOCOL.md), checked
 * against the real collector process and what it stored in S3 (the local Ceph RGW): the answer, the annotations and dumps
 * kept, and the `collector_notes` that say what was dropped or changed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, send, type Answer } from '../helpers/http-client.js';
import { rawMultipart, type RawPart } from '../helpers/multipart.js';
import { s3Target, type ObjectReader } from '../helpers/stored-crashes.js';
import { dumpKey, dumpNamesKey, rawCrashKey } from '../../src/storage/storage-keys.js';

const dump = loadFixtureDumps().get('minidump2.dmp')!;
const BOUNDARY = 'shapeBoundary42';

const text = (name: string, value: string | Buffer): RawPart => ({
  headers: [`Content-Disposition: form-data; name="${name}"`],
  body: Buffer.isBuffer(value) ? value : Buffer.from(value),
});
const file = (name: string, data: Buffer = dump): RawPart => ({
  headers: [`Content-Disposition: form-data; name="${name}"; filename="x.dmp"`, 'Content-Type: application/octet-stream'],
  body: data,
});
const raw = (headers: string[], body: string | Buffer): RawPart => ({ headers, body: Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1') });
const product = text('prod', 'ShapeApp');
const mainDump = file('upload_file_minidump');

interface Stored {
  raw: Record<string, unknown> & { metadata: { collector_notes: string[] } };
  rawText: string;
  dumps: Record<string, Buffer>;
}

describe('part shapes: each has a defined answer, the rest of the report is kept', () => {
  let collector: CollectorProcess;
  let reader: ObjectReader;
  before(async () => {
    const target = s3Target('shapes');
    reader = target.reader;
    // These reports share one dump and one product by design: without DEDUP_WINDOW=0 each would
    // be a repeat of the first (answered with its crash ID, nothing new stored).
    collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('shapes-spool'), ...target.env, SPOOL_DURABILITY: 'normal', DEDUP_WINDOW: '0' });
  });
  after(() => collector.stop());

  const post = (parts: RawPart[], options: { gzip?: boolean; chunkSize?: number } = {}): Promise<Answer> => {
    const body = rawMultipart(parts, BOUNDARY);
    const headers: Record<string, string> = { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}` };
    if (options.gzip) headers['Content-Encoding'] = 'gzip';
    return send(collector.url, options.gzip ? gzipSync(body) : body, { headers, ...(options.chunkSize ? { chunkSize: options.chunkSize } : {}) });
  };

  const stored = async (answer: Answer): Promise<Stored> => {
    const crashId = crashIdFrom(answer);
    const deadline = Date.now() + 20_000;
    let rawBytes = await reader.get(rawCrashKey(crashId));
    while (!rawBytes && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      rawBytes = await reader.get(rawCrashKey(crashId));
    }
    assert.ok(rawBytes, `raw crash of ${crashId} stored`);
    const names = JSON.parse((await reader.get(dumpNamesKey(crashId)))!.toString('utf8')) as string[];
    const dumps: Record<string, Buffer> = Object.create(null);
    for (const name of names) dumps[name] = (await reader.get(dumpKey(crashId, name)))!;
    const rawText = rawBytes.toString('utf8');
    return { raw: JSON.parse(rawText) as Stored['raw'], rawText, dumps };
  };

  const alive = () => assert.equal(collector.child.exitCode, null, `the collector is running: ${collector.stderr}`);

  test('the report from the advisory: a file part without a name is dropped and noted, the process lives', async () => {
    const crash = await stored(await post([product, raw(['Content-Disposition: form-data; filename="x.dmp"', 'Content-Type: application/octet-stream'], dump), mainDump]));
    assert.deepEqual(Object.keys(crash.dumps), ['upload_file_minidump']);
    assert.ok(crash.raw.metadata.collector_notes.includes('dropped a file part without a name'));
    alive();
  });

  test('a text part without a name, or with an empty one, is dropped and noted', async () => {
    const crash = await stored(await post([product, raw(['Content-Disposition: form-data'], 'lost'), raw(['Content-Disposition: form-data; name=""'], 'lost too'), mainDump]));
    assert.equal(crash.raw['prod'], 'ShapeApp');
    assert.equal(crash.raw.metadata.collector_notes.filter((note) => note === 'dropped a text part without a name').length, 2);
    assert.doesNotMatch(crash.rawText, /lost/);
  });

  test('a file part with an empty name is dropped and noted', async () => {
    const crash = await stored(await post([product, raw(['Content-Disposition: form-data; name=""; filename="x.dmp"', 'Content-Type: application/octet-stream'], dump), mainDump]));
    assert.deepEqual(Object.keys(crash.dumps), ['upload_file_minidump']);
    assert.ok(crash.raw.metadata.collector_notes.includes('dropped a file part without a name'));
  });

  test('a part without any header is dropped and noted (busboy alone refuses the whole form)', async () => {
    const crash = await stored(await post([product, raw([], 'headless'), mainDump]));
    assert.deepEqual(crash.raw.metadata.collector_notes.filter((note) => note.startsWith('dropped')), ['dropped a part without headers']);
    assert.deepEqual(Object.keys(crash.dumps), ['upload_file_minidump']);
  });

  test('a part with only Content-Type (no Content-Disposition) is dropped and noted', async () => {
    const crash = await stored(await post([product, raw(['Content-Type: application/octet-stream'], dump), mainDump]));
    assert.ok(crash.raw.metadata.collector_notes.includes('dropped a part without Content-Disposition'));
    assert.deepEqual(Object.keys(crash.dumps), ['upload_file_minidump']);
  });

  test('Content-Disposition attachment or inline with a name is read as form-data; without a name it is dropped', async () => {
    const crash = await stored(
      await post([
        raw(['Content-Disposition: inline; name="prod"'], 'InlineApp'),
        raw(['Content-Disposition: attachment; name="upload_file_minidump"; filename="a.dmp"', 'Content-Type: application/octet-stream'], dump),
        raw(['Content-Disposition: ATTACHMENT; filename="b.dmp"', 'Content-Type: application/octet-stream'], dump),
      ]),
    );
    assert.equal(crash.raw['prod'], 'InlineApp');
    assert.ok(crash.dumps['upload_file_minidump']!.equals(dump));
    const notes = crash.raw.metadata.collector_notes;
    assert.ok(notes.includes('read a Content-Disposition: inline part as form-data'));
    assert.equal(notes.filter((note) => note === 'read a Content-Disposition: attachment part as form-data').length, 2);
    assert.ok(notes.includes('dropped a file part without a name'));
  });

  test('any other disposition type is dropped and noted', async () => {
    const crash = await stored(await post([product, raw(['Content-Disposition: file; name="upload_file_minidump_x"; filename="x"', 'Content-Type: application/octet-stream'], dump), mainDump]));
    assert.ok(crash.raw.metadata.collector_notes.includes('dropped a part with Content-Disposition: file'));
    assert.deepEqual(Object.keys(crash.dumps), ['upload_file_minidump']);
  });

  test('a nested multipart/mixed part refuses the report with 400 malformed_nested_multipart', async () => {
    const inner = rawMultipart([file('upload_file_minidump')], 'innerB');
    for (const headers of [
      ['Content-Disposition: form-data; name="files"', 'Content-Type: multipart/mixed; boundary=innerB'],
      ['Content-Disposition: form-data; name="files"; filename="all"', 'Content-Type: multipart/mixed; boundary=innerB'],
    ]) {
      const answer = await post([product, raw(headers, inner)]);
      assert.equal(answer.status, 400);
      assert.equal(answer.body, 'Discarded=malformed_nested_multipart');
    }
  });

  test('an unknown or bogus charset is decoded as UTF-8 and noted (it was a 500); known ones are honoured', async () => {
    const crash = await stored(
      await post([
        product,
        raw(['Content-Disposition: form-data; name="unknown"', 'Content-Type: text/plain; charset=x-no-such-charset'], 'caf\u00c3\u00a9'),
        raw(['Content-Disposition: form-data; name="bogus"', 'Content-Type: text/plain; charset="base64"'], 'plain'),
        raw(['Content-Disposition: form-data; name="latin1"', 'Content-Type: text/plain; charset=iso-8859-1'], 'caf\u00e9'),
        raw(['Content-Disposition: form-data; name="utf16"', 'Content-Type: text/plain; charset=utf-16le'], Buffer.from('h\u00e9', 'utf16le')),
        mainDump,
      ]),
    );
    assert.equal(crash.raw['unknown'], 'café');
    assert.equal(crash.raw['bogus'], 'plain');
    assert.equal(crash.raw['latin1'], 'café');
    assert.equal(crash.raw['utf16'], 'hé');
    const notes = crash.raw.metadata.collector_notes;
    assert.ok(notes.includes('decoded a part declared as charset x-no-such-charset as UTF-8'));
    assert.ok(notes.includes('decoded a part declared as charset base64 as UTF-8'));
  });

  test('bytes that are not UTF-8 in names and values become U+FFFD; NUL is removed from values; both noted', async () => {
    const crash = await stored(
      await post([
        product,
        raw(['Content-Disposition: form-data; name="bad\u00ffname"'], 'ok'),
        raw(['Content-Disposition: form-data; name="badvalue"'], Buffer.from([0x61, 0xff, 0xfe, 0x62])),
        raw(['Content-Disposition: form-data; name="nul"'], Buffer.from('a\u0000b')),
        raw(['Content-Disposition: form-data; name="lone"', 'Content-Type: text/plain; charset=utf-16le'], Buffer.from([0x00, 0xd8, 0x41, 0x00])),
        mainDump,
      ]),
    );
    assert.equal(crash.raw['bad\ufffdname'], 'ok');
    assert.equal(crash.raw['badvalue'], 'a\ufffd\ufffdb');
    assert.equal(crash.raw['nul'], 'ab');
    assert.equal(crash.raw['lone'], '\ufffdA');
    const notes = crash.raw.metadata.collector_notes;
    assert.ok(notes.includes('annotation "bad\ufffdname" held bytes that are not UTF-8, stored as U+FFFD'), JSON.stringify(notes));
    assert.ok(notes.includes('annotation "badvalue" held bytes that are not UTF-8, stored as U+FFFD'));
    assert.ok(notes.includes('removed NUL characters from annotation "nul"'));
    assert.ok(notes.includes('replaced lone surrogates in annotation "lone" with U+FFFD'));
    assert.ok(crash.rawText.isWellFormed() && !crash.rawText.includes('\\u0000'));
  });

  test('NUL and control bytes in a part header become U+FFFD instead of refusing the form', async () => {
    const crash = await stored(await post([product, raw(['Content-Disposition: form-data; name="a\u0000b\u0001c"'], 'v'), mainDump]));
    assert.equal(crash.raw['a\ufffdb\ufffdc'], 'v');
    assert.ok(crash.raw.metadata.collector_notes.includes('replaced control characters in a part header with U+FFFD'));
  });

  test('JSON extra: NUL and lone surrogates cleaned at every depth; keys like __proto__ stay keys', async () => {
    const extra = '{"ProductName":"P\\u0000","__proto__":{"polluted":true},"constructor":"c","deep":{"x":"\\ud800","toString":1}}';
    const crash = await stored(await post([raw(['Content-Disposition: form-data; name="extra"; filename="extra.json"', 'Content-Type: application/json'], extra), mainDump]));
    assert.equal(crash.raw['ProductName'], 'P');
    assert.match(crash.rawText, /"__proto__":\{"polluted":true\}/);
    assert.equal(crash.raw['constructor'], 'c');
    assert.deepEqual(crash.raw['deep'], { x: '\ufffd', toString: 1 });
    assert.ok(crash.raw.metadata.collector_notes.includes('removed NUL characters from the JSON extra part'));
  });

  test('__proto__, constructor and toString as annotation keys and dump names are stored as ordinary keys', async () => {
    const crash = await stored(
      await post([
        product,
        text('__proto__', 'p'),
        text('constructor', 'c'),
        text('toString', 't'),
        file('__proto__', Buffer.from('MDMPproto')),
        file('constructor', Buffer.from('MDMPctor')),
        mainDump,
      ]),
    );
    assert.match(crash.rawText, /"__proto__":"p"/);
    assert.equal(crash.raw['constructor'], 'c');
    assert.equal(crash.raw['toString'], 't');
    assert.deepEqual(Object.keys(crash.dumps).sort(), ['__proto__', 'constructor', 'upload_file_minidump']);
    assert.equal(crash.dumps['__proto__']!.toString(), 'MDMPproto');
    assert.match(crash.rawText, /"dump_checksums":\{"__proto__":"[0-9a-f]{64}"/);
    // Nothing leaked into the process: a plain report afterwards carries none of it.
    const next = await stored(await post([product, mainDump]));
    assert.deepEqual(Object.keys(next.raw).sort(), ['ProductName', 'metadata', 'prod', 'submitted_timestamp', 'uuid', 'version']);
  });

  test('Content-Transfer-Encoding is not decoded: bytes kept as sent, noted', async () => {
    const base64 = Buffer.from(dump.toString('base64'));
    const crash = await stored(
      await post([
        product,
        raw(['Content-Disposition: form-data; name="upload_file_minidump"; filename="x.dmp"', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64'], base64),
      ]),
    );
    assert.ok(crash.dumps['upload_file_minidump']!.equals(base64));
    assert.ok(crash.raw.metadata.collector_notes.includes('part "upload_file_minidump" declares Content-Transfer-Encoding "base64"; kept as sent'));
  });

  test('RFC 5987: filename* is accepted; a part named only by name* has no name (RFC 7578 forbids it) and is dropped', async () => {
    const crash = await stored(
      await post([
        product,
        raw(["Content-Disposition: form-data; name=\"upload_file_minidump\"; filename*=utf-8''r%C3%A9sum%C3%A9.dmp", 'Content-Type: application/octet-stream'], dump),
        raw(["Content-Disposition: form-data; name*=utf-8''%C3%A9t%C3%A9"], 'summer'),
      ]),
    );
    assert.ok(crash.dumps['upload_file_minidump']!.equals(dump));
    assert.ok(crash.raw.metadata.collector_notes.includes('dropped a text part without a name'));
    assert.doesNotMatch(crash.rawText, /summer/);
  });

  test('a Content-Disposition busboy cannot parse drops that part, noted by count', async () => {
    const crash = await stored(await post([product, raw(['Content-Disposition: form-data; name'], 'unparsed'), mainDump]));
    assert.ok(crash.raw.metadata.collector_notes.includes('dropped 1 part(s) whose Content-Disposition could not be parsed'));
  });

  test('every shape also holds gzipped and in 1-byte chunks', async () => {
    const parts = [product, raw([], 'x'), raw(['Content-Disposition: attachment; name="upload_file_minidump"; filename="a"', 'Content-Type: application/octet-stream'], dump)];
    for (const options of [{ gzip: true }, { chunkSize: 1 }, { gzip: true, chunkSize: 3 }]) {
      const crash = await stored(await post(parts, options));
      assert.ok(crash.dumps['upload_file_minidump']!.equals(dump), JSON.stringify(options));
      assert.ok(crash.raw.metadata.collector_notes.includes('dropped a part without headers'));
    }
    alive();
  });
});
