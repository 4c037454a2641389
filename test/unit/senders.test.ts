/**
 * The pure parts of idempotent ingest and upload tokens: report identities, the tokens file, the
 * rate buckets and the sender checks.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reportIdentity, reportUuidOf } from '../../src/intake/report-identity.js';
import { parseUploadTokens, presentedToken, UploadTokens, UploadTokensError } from '../../src/policy/upload-tokens.js';
import { RateLimits } from '../../src/policy/rate-limit.js';
import { checkClaims, checkSender } from '../../src/policy/sender-checks.js';
import { newCrashId } from '../../src/crash-id.js';

const UUID = '6c7c4b7e-2f39-4c59-9a55-7a3f1d2b9e10';

describe('report identity', () => {
  const dump = (filename?: string) => ({ name: 'upload_file_minidump', data: Buffer.from('MDMP'), ...(filename ? { filename } : {}) });

  test("Crashpad's report UUID comes from the minidump's filename", () => {
    assert.equal(reportUuidOf([dump(`${UUID.toUpperCase()}.dmp`)]), UUID);
    assert.equal(reportUuidOf([dump('minidump.dmp')]), undefined);
    assert.equal(reportUuidOf([{ ...dump(`${UUID}.dmp`), name: 'other' }]), undefined);
  });

  test('same report UUID and guid: same identity, whatever the other annotations; other dumps: other content', () => {
    const a = reportIdentity({ guid: 'g', prod: 'A' }, [dump(`${UUID}.dmp`)], { upload_file_minidump: 'aa' })!;
    const b = reportIdentity({ guid: 'g', prod: 'B' }, [dump(`${UUID}.dmp`)], { upload_file_minidump: 'aa' })!;
    const c = reportIdentity({ guid: 'g' }, [dump(`${UUID}.dmp`)], { upload_file_minidump: 'bb' })!;
    const d = reportIdentity({ guid: 'h' }, [dump(`${UUID}.dmp`)], { upload_file_minidump: 'aa' })!;
    assert.equal(a.reportUuid, UUID);
    assert.deepEqual(a, b);
    assert.equal(c.identity, a.identity);
    assert.notEqual(c.content, a.content);
    assert.notEqual(d.identity, a.identity);
  });

  test('I10: without a report UUID: every annotation (in any order) and the dumps; no dumps: no identity', () => {
    const checksums = { upload_file_minidump: 'aa' };
    const sent = { guid: 'g', ProductName: 'P', Version: '1', Comments: 'first crash', Nested: { b: 1, a: [{ y: 2, x: 1 }] } };
    const base = reportIdentity(sent, [dump()], checksums)!;
    assert.equal(base.reportUuid, undefined);
    const reordered = { Nested: { a: [{ x: 1, y: 2 }], b: 1 }, Comments: 'first crash', Version: '1', ProductName: 'P', guid: 'g' };
    assert.equal(reportIdentity(reordered, [dump()], checksums)!.identity, base.identity, 'the order sent does not matter');
    const changes: Record<string, unknown>[] = [
      { guid: 'h' },
      { ProductName: 'Q' },
      { Version: '2' },
      { Comments: 'another crash' },
      { Extra: '' },
      { Nested: { b: 1, a: [{ y: 2, x: 2 }] } },
      { Nested: [['a', [{ x: 1, y: 2 }]], ['b', 1]] },
    ];
    for (const change of changes) {
      assert.notEqual(reportIdentity({ ...sent, ...change }, [dump()], checksums)!.identity, base.identity, JSON.stringify(change));
    }
    const { Comments: _dropped, ...withoutComments } = sent;
    assert.notEqual(reportIdentity(withoutComments, [dump()], checksums)!.identity, base.identity, 'an annotation fewer');
    assert.notEqual(reportIdentity(sent, [dump()], { upload_file_minidump: 'bb' })!.identity, base.identity, 'other dump bytes');
    // As the parser makes them: no prototype, so `__proto__` is an own key.
    const proto = Object.create(null) as Record<string, unknown>;
    proto['__proto__'] = 'x';
    proto['guid'] = 'g';
    assert.notEqual(reportIdentity(proto, [dump()], checksums)!.identity, reportIdentity({ guid: 'g' }, [dump()], checksums)!.identity, '__proto__ is a key');
    assert.equal(reportIdentity({ guid: 'g' }, [], {}), undefined);
  });
});

describe('upload tokens', () => {
  const file = (document: unknown) => {
    const path = join(mkdtempSync(join(tmpdir(), 'tokens-')), 'tokens.json');
    writeFileSync(path, JSON.stringify(document));
    return path;
  };

  test('find compares every entry and returns the one the token belongs to', () => {
    const tokens = UploadTokens.load(file({ tokens: [{ token: 'a'.repeat(16), name: 'one' }, { token: 'b'.repeat(16), name: 'two', products: ['P'] }] }));
    assert.equal(tokens.find('a'.repeat(16))?.name, 'one');
    assert.deepEqual([...tokens.find('b'.repeat(16))!.products!], ['P']);
    assert.equal(tokens.find('a'.repeat(15)), undefined);
    assert.equal(tokens.find(undefined), undefined);
    assert.equal(tokens.find(''), undefined);
  });

  test('every mistake is named', () => {
    for (const [document, message] of [
      [{ tokens: [{ token: 'short', name: 'n' }] }, /token #1 field "token": expected a string of at least 16/],
      [{ tokens: [{ token: 'a'.repeat(16), name: 'has space' }] }, /token #1 field "name"/],
      [{ tokens: [{ token: 'a'.repeat(16), name: 'n', products: [] }] }, /field "products": expected a non-empty list/],
      [{ tokens: [{ token: 'a'.repeat(16), name: 'n', max_per_minute: 0 }] }, /field "max_per_minute"/],
      [{ tokens: [{ token: 'a'.repeat(16), name: 'n', may_set_crash_id: 'yes' }] }, /field "may_set_crash_id"/],
      [{ tokens: [{ token: 'a'.repeat(16), name: 'n', role: 'x' }] }, /field "role": unknown field/],
      [{ tokens: [{ token: 'a'.repeat(16), name: 'n' }, { token: 'b'.repeat(16), name: 'n' }] }, /token #2 field "name": "n" is used by an earlier token/],
      [{ tokens: {} }, /expected \{"tokens": \[ … \]\}/],
    ] as const) {
      assert.throws(() => parseUploadTokens(JSON.stringify(document), 'tokens.json'), (error: Error) => {
        assert.ok(error instanceof UploadTokensError);
        assert.match(error.message, /^tokens\.json: /);
        assert.match(error.message, message);
        return true;
      });
    }
  });

  test('a failed reload keeps the entries read before', () => {
    const path = file({ tokens: [{ token: 'a'.repeat(16), name: 'one' }] });
    const tokens = UploadTokens.load(path);
    writeFileSync(path, '{"tokens": [');
    assert.throws(() => tokens.reload(), /not valid JSON/);
    assert.equal(tokens.find('a'.repeat(16))?.name, 'one');
  });

  test('the token comes as a bearer or in the query', () => {
    assert.equal(presentedToken('Bearer abc', new URLSearchParams('token=def')), 'abc');
    assert.equal(presentedToken(undefined, new URLSearchParams('token=def')), 'def');
    assert.equal(presentedToken('Basic abc', new URLSearchParams('')), undefined);
  });
});

test('rate buckets: a burst of perMinute, then one per 60/perMinute seconds', () => {
  let now = 0;
  const limits = new RateLimits(() => now);
  for (let n = 0; n < 6; n += 1) assert.equal(limits.take('a', 6), true);
  assert.equal(limits.take('a', 6), false);
  assert.equal(limits.take('b', 6), true, 'buckets are per sender');
  now += 9_999;
  assert.equal(limits.take('a', 6), false);
  now += 1;
  assert.equal(limits.take('a', 6), true);
});

describe('sender checks', () => {
  const tokens = UploadTokens.load(
    (() => {
      const path = join(mkdtempSync(join(tmpdir(), 'tokens-')), 'tokens.json');
      writeFileSync(path, JSON.stringify({ tokens: [{ token: 'a'.repeat(16), name: 'app', products: ['App'], max_per_minute: 1 }, { token: 'b'.repeat(16), name: 'stage', may_set_crash_id: true }] }));
      return path;
    })(),
  );

  test('token, then rate', () => {
    const limits = new RateLimits(() => 0);
    assert.deepEqual(checkSender(undefined, limits, undefined, new URLSearchParams()), {});
    assert.deepEqual(checkSender(tokens, limits, undefined, new URLSearchParams()), { refusal: { reason: 'unauthorized', status: 401, body: 'Discarded=unauthorized' } });
    assert.equal((checkSender(tokens, limits, undefined, new URLSearchParams(`token=${'a'.repeat(16)}`)) as { sender: { name: string } }).sender.name, 'app');
    assert.deepEqual(checkSender(tokens, limits, undefined, new URLSearchParams(`token=${'a'.repeat(16)}`)), {
      refusal: { reason: 'rate_limited', status: 200, body: 'Discarded=rate_limited' },
    });
  });

  test('products and chosen crash IDs', () => {
    const app = tokens.find('a'.repeat(16));
    const stage = tokens.find('b'.repeat(16));
    assert.deepEqual(checkClaims(app, { ProductName: 'App' }), {});
    assert.deepEqual(checkClaims(app, { ProductName: 'Other' }), { refusal: { reason: 'forbidden_product', status: 403, body: 'Discarded=forbidden_product' } });
    const chosen = newCrashId(new Date());
    assert.deepEqual(checkClaims(stage, { uuid: chosen }), { crashId: chosen });
    assert.deepEqual(checkClaims(stage, { uuid: 'nope' }), { refusal: { reason: 'invalid_uuid', status: 400, body: 'Discarded=malformed_invalid_uuid' } });
    assert.deepEqual(checkClaims(app, { ProductName: 'App', uuid: chosen }), { refusal: { reason: 'unauthorized_uuid', status: 401, body: 'Discarded=unauthorized_uuid' } });
    assert.deepEqual(checkClaims(undefined, { uuid: chosen }), { refusal: { reason: 'unauthorized_uuid', status: 401, body: 'Discarded=unauthorized_uuid' } });
  });
});
