import { test } from 'node:test';
import assert from 'node:assert/strict';
import { annotate, antennaTimestamp, buildCrash, clientKind, type ReceivedReport, type CrashMarks } from '../../src/intake/raw-crash.js';
import { sha256Hex } from '../../src/sha256.js';
import type { ParsedReport } from '../../src/crash.js';

const ACCEPTED: CrashMarks = { rule: 'accept_everything', digit: 0 };

function crashOf(received: ReceivedReport, throttle = ACCEPTED) {
  return buildCrash(received, annotate(received), throttle);
}

const mdmp = Buffer.concat([Buffer.from('MDMP'), Buffer.alloc(60, 7)]);

function report(overrides: Partial<ParsedReport> = {}): ParsedReport {
  return {
    annotations: { prod: 'App', ver: '1.0', Email: 'a@b.c', guid: 'g' },
    dumps: [{ name: 'upload_file_minidump', data: mdmp }],
    notes: [],
    payload: 'multipart',
    compressed: false,
    payloadSize: 1234,
    ...overrides,
  };
}

test('the raw crash keeps every annotation and adds the Antenna fields', () => {
  const receivedAt = new Date('2026-11-25T10:11:12.345Z');
  const crash = crashOf({ report: report(), receivedAt, userAgent: 'ua/1', query: {}, removeKeys: [] });
  const raw = crash.rawCrash;
  assert.equal(raw['prod'], 'App');
  assert.equal(raw['Email'], 'a@b.c');
  assert.equal(raw.uuid, crash.crashId);
  assert.equal(raw.version, 2);
  assert.equal(raw.submitted_timestamp, '2026-11-25T10:11:12.345000+00:00', "Antenna's (Python isoformat) form");
  assert.equal(antennaTimestamp(new Date('2026-11-25T10:11:12.000Z')), '2026-11-25T10:11:12+00:00');
  assert.equal(crash.crashId.slice(-7), '0261125');
  assert.deepEqual({ ...raw.metadata.dump_checksums }, { upload_file_minidump: sha256Hex(mdmp) });
  assert.equal(raw.metadata.payload, 'multipart');
  assert.equal(raw.metadata.payload_compressed, '0');
  assert.equal(raw.metadata.payload_size, 1234);
  assert.equal(raw.metadata.throttle_rule, 'accept_everything');
  assert.equal(raw.metadata.user_agent, 'ua/1');
  assert.equal(crash.receivedAt, receivedAt.getTime());
});

test('ProductName and Version are added from client-specific names, and noted', () => {
  const raw = crashOf({ report: report(), receivedAt: new Date(), userAgent: '', query: {}, removeKeys: [] }).rawCrash;
  assert.equal(raw['ProductName'], 'App');
  assert.equal(raw['Version'], '1.0');
  assert.ok(raw.metadata.collector_notes.includes('added ProductName from prod'));
  const mozilla = crashOf({
    report: report({ annotations: { ProductName: 'Firefox', Version: '120', prod: 'other' }, payload: 'json' }),
    receivedAt: new Date(),
    userAgent: '',
    query: {},
    removeKeys: [],
  }).rawCrash;
  assert.equal(mozilla['ProductName'], 'Firefox');
  assert.deepEqual(mozilla.metadata.collector_notes, []);
});

test('configured personal-data keys are removed and the removal noted', () => {
  const raw = crashOf({ report: report(), receivedAt: new Date(), userAgent: '', query: {}, removeKeys: ['Email', 'Absent'] }).rawCrash;
  assert.ok(!('Email' in raw));
  assert.ok(raw.metadata.collector_notes.includes('Removed Email from raw crash.'));
  assert.ok(!raw.metadata.collector_notes.some((note) => note.includes('Absent')));
});

test('URL query parameters fill in annotations without overriding form fields', () => {
  const raw = crashOf({
    report: report(),
    receivedAt: new Date(),
    userAgent: '',
    query: { product: 'FromQuery', prod: 'ignored' },
    removeKeys: [],
  }).rawCrash;
  assert.equal(raw['product'], 'FromQuery');
  assert.equal(raw['prod'], 'App');
});

test("a URL query parameter named like a field the collector writes is kept under query_<name>, not claimed and dropped", () => {
  const raw = crashOf({ report: report(), receivedAt: new Date(), userAgent: '', query: { version: '3.1', uuid: 'x' }, removeKeys: [] }).rawCrash;
  assert.equal(raw.version, 2);
  assert.equal(raw['query_version'], '3.1');
  assert.equal(raw['query_uuid'], 'x');
  assert.ok(raw.metadata.collector_notes.includes('added query_version from the URL query parameter version'));
  assert.ok(!raw.metadata.collector_notes.some((note) => note.startsWith('added version')));
});

test('the throttle mark sets the rule and the crash ID digit', () => {
  const crash = crashOf({ report: report(), receivedAt: new Date('2026-11-25T00:00:00Z'), userAgent: '', query: {}, removeKeys: [] }, { rule: 'has_comments', digit: 1 });
  assert.equal(crash.rawCrash.metadata.throttle_rule, 'has_comments');
  assert.equal(crash.crashId.slice(-7), '1261125');
});

test('a dump without the MDMP magic is stored and noted, not refused', () => {
  const raw = crashOf({
    report: report({ dumps: [{ name: 'upload_file_minidump', data: Buffer.from('not a minidump') }] }),
    receivedAt: new Date(),
    userAgent: '',
    query: {},
    removeKeys: [],
  }).rawCrash;
  assert.ok(raw.metadata.collector_notes.includes('upload_file_minidump has no MDMP magic'));
});

test('client kinds are told apart for logs and metrics', () => {
  assert.equal(clientKind(report({ payload: 'json' }), ''), 'mozilla');
  assert.equal(clientKind(report({ annotations: { _productName: 'X' } }), ''), 'electron');
  assert.equal(clientKind(report({ compressed: true }), ''), 'crashpad');
  assert.equal(clientKind(report(), 'Breakpad/1.0 (Linux)'), 'breakpad');
});
