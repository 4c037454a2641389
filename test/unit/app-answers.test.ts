/**
 * The answer table, in-process: the Hono app built by createApp with fakes behind its seams (a
 * spool that records appends or refuses them, a heartbeat of our choosing), asked with
 * `app.request`. Each row: the status, the exact body (Antenna's bytes: only `CrashID=…` ends
 * with a newline), the headers that matter (Retry-After on every 503), and the metric reason.
 * The real-process tests (bad-input, antenna-dropin, upload-tokens, operations) stay; these run
 * in milliseconds and cover every refusal in one place.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import type { IncomingHttpHeaders } from 'node:http';
import { loadConfig } from '../../src/config.js';
import type { Crash } from '../../src/crash.js';
import { isCrashId, newCrashId } from '../../src/crash-id.js';
import { createApp, type AppDeps } from '../../src/http/app.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { RateLimits } from '../../src/policy/rate-limit.js';
import { loadThrottleRules } from '../../src/policy/throttle-rules-file.js';
import { Throttler } from '../../src/policy/throttler.js';
import { UploadTokens } from '../../src/policy/upload-tokens.js';
import { MemoryBudget } from '../../src/report/memory-budget.js';
import type { CrashAppender } from '../../src/spool/runtime/ports.js';
import { SpoolFull } from '../../src/spool/runtime/usage.js';
import { FIXTURES_DIR } from '../helpers/fixtures.js';
import { multipart } from '../helpers/multipart.js';

const DUMP = Buffer.from('MDMP fake minidump bytes');

/** A spool that records what it is given; `refuse` makes the next appends fail as the real one would. */
class RecordingSpool implements CrashAppender {
  readonly crashes: Crash[] = [];
  duplicateOf: string | undefined;
  refuse: Error | undefined;

  async append(crash: Crash): Promise<{ duplicateOf?: string }> {
    if (this.refuse) throw this.refuse;
    if (this.duplicateOf) return { duplicateOf: this.duplicateOf };
    this.crashes.push(crash);
    return {};
  }
}

function app(env: Record<string, string> = {}, tokensFile?: string) {
  const config = loadConfig({ THROTTLE_RULES: join(FIXTURES_DIR, 'throttle-rules.json'), ...env });
  const spool = new RecordingSpool();
  const state = { routable: true, accepting: true };
  const health = { healthy: true };
  const metrics = createMetrics();
  const deps: AppDeps = {
    config,
    spool,
    onSpooled: () => undefined,
    state,
    logger: createLogger('silent'),
    metrics,
    version: { source: 'https://example.com/crashspool', version: '0.1.0', commit: 'abc', build: 'https://ci.example.com/1' },
    heartbeat: async () => ({ httpStatus: health.healthy ? 200 : 503, body: { status: health.healthy ? 'ok' : 'error' } }),
    throttler: new Throttler(loadThrottleRules(config.throttleRules)),
    tokens: tokensFile === undefined ? undefined : UploadTokens.load(tokensFile),
    rateLimits: new RateLimits(),
    memory: new MemoryBudget(config.inflightMaxBytes),
    refreshGauges: () => undefined,
    serveMetrics: true,
  };
  const hono = createApp(deps);
  /** Posts `body` with `headers` the way the Node adapter hands a request over: its body as `incoming`. */
  const post = (body: Buffer, headers: IncomingHttpHeaders, path = '/submit') => {
    const incoming = Object.assign(Readable.from([body]), { headers: { 'content-length': String(body.length), ...headers } });
    return hono.request(path, { method: 'POST' }, { incoming });
  };
  const rejected = async (reason: string) => (await metrics.rejected.get()).values.find((value) => value.labels.reason === reason)?.value ?? 0;
  return { hono, post, spool, state, health, rejected };
}

const form = (annotations: Record<string, string>, dumps: Buffer[] = [DUMP]) =>
  multipart([
    ...Object.entries(annotations).map(([name, value]) => ({ name, value })),
    ...dumps.map((data, index) => ({ name: index === 0 ? 'upload_file_minidump' : `upload_file_minidump_${index}`, filename: 'minidump.dmp', data })),
  ]);

const post = (target: ReturnType<typeof app>, annotations: Record<string, string>, path?: string) => {
  const built = form(annotations);
  return target.post(built.body, { 'content-type': built.contentType }, path);
};

/** Asserts an answer: status, exact body, text/plain, Retry-After exactly on 503. */
async function expectAnswer(answer: Response, status: number, body: string | RegExp): Promise<string> {
  const text = await answer.text();
  assert.equal(answer.status, status, text);
  if (typeof body === 'string') assert.equal(text, body);
  else assert.match(text, body);
  assert.equal(answer.headers.get('content-type'), 'text/plain');
  assert.equal(answer.headers.get('retry-after'), status === 503 ? '30' : null);
  return text;
}

const CRASH_ID_ANSWER = /^CrashID=bp-([0-9a-f-]{36})\n$/;

describe('/submit answers', () => {
  test('a report: 200 CrashID=bp-<id> with a newline, after the spool took it', async () => {
    const target = app();
    const text = await expectAnswer(await post(target, { ProductName: 'App', Version: '1' }), 200, CRASH_ID_ANSWER);
    const crashId = CRASH_ID_ANSWER.exec(text)![1]!;
    assert.ok(isCrashId(crashId));
    assert.deepEqual(target.spool.crashes.map((crash) => crash.crashId), [crashId]);
  });

  test('gzipped and chunked (Crashpad): accepted the same way', async () => {
    const target = app();
    const built = form({ prod: 'App', ver: '1' });
    const answer = await target.post(gzipSync(built.body), { 'content-type': built.contentType, 'content-encoding': 'gzip', 'transfer-encoding': 'chunked', 'content-length': undefined as unknown as string });
    await expectAnswer(answer, 200, CRASH_ID_ANSWER);
    assert.equal(target.spool.crashes[0]!.rawCrash.metadata.payload_compressed, '1');
  });

  test('a repeat the spool recognises: its first crash ID, nothing new stored', async () => {
    const target = app();
    const first = newCrashId(new Date());
    target.spool.duplicateOf = first;
    await expectAnswer(await post(target, { ProductName: 'App' }), 200, `CrashID=bp-${first}\n`);
    assert.equal(target.spool.crashes.length, 0);
  });

  const sound = form({ a: 'b' });
  const empty = form({});
  const malformed: [string, Buffer, IncomingHttpHeaders, string][] = [
    ['no Content-Type', sound.body, {}, 'malformed_no_content_type'],
    ['not multipart', Buffer.from('a=b'), { 'content-type': 'application/x-www-form-urlencoded' }, 'malformed_wrong_content_type'],
    ['no boundary', sound.body, { 'content-type': 'multipart/form-data' }, 'malformed_no_boundary'],
    ['gzip that is not', sound.body, { 'content-type': sound.contentType, 'content-encoding': 'gzip' }, 'malformed_bad_gzip'],
    ['an unsupported Content-Encoding', sound.body, { 'content-type': sound.contentType, 'content-encoding': 'br' }, 'malformed_unsupported_content_encoding'],
    ['no annotations', empty.body, { 'content-type': empty.contentType }, 'malformed_no_annotations'],
  ];
  for (const [what, body, headers, reason] of malformed) {
    test(`${what}: 400 Discarded=${reason}, no newline, counted`, async () => {
      const target = app();
      await expectAnswer(await target.post(body, headers), 400, `Discarded=${reason}`);
      assert.equal(await target.rejected(reason), 1);
      assert.equal(target.spool.crashes.length, 0);
    });
  }

  test('a body over MAX_BODY_BYTES: 413 Discarded=too_large_body', async () => {
    const target = app({ MAX_BODY_BYTES: '1k' });
    const built = form({ a: 'b' }, [Buffer.alloc(4096)]);
    await expectAnswer(await target.post(built.body, { 'content-type': built.contentType }), 413, 'Discarded=too_large_body');
    assert.equal(await target.rejected('too_large_body'), 1);
  });

  test('throttle rules: reject answers 200 Discarded=rule_<name>; fakeaccept a crash ID with digit 3; neither is stored', async () => {
    const target = app();
    await expectAnswer(await post(target, { ProductName: 'Beta', Channel: 'old' }), 200, 'Discarded=rule_drop_old_beta');
    const text = await expectAnswer(await post(target, { ProductName: 'Spam' }), 200, CRASH_ID_ANSWER);
    assert.equal(CRASH_ID_ANSWER.exec(text)![1]!.slice(-7, -6), '3');
    assert.equal(target.spool.crashes.length, 0);
  });

  test('the spool full: 503 Discarded=spool_full with Retry-After', async () => {
    const target = app();
    target.spool.refuse = new SpoolFull('spool holds 10 bytes; SPOOL_MAX_BYTES is 10', 'SPOOL_FULL', 5);
    await expectAnswer(await post(target, { ProductName: 'App' }), 503, 'Discarded=spool_full');
    target.spool.refuse = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    await expectAnswer(await post(target, { ProductName: 'App' }), 503, 'Discarded=disk_full');
    assert.equal(await target.rejected('spool_full'), 1);
    assert.equal(await target.rejected('disk_full'), 1);
  });

  test('the in-flight memory budget spent: 503 Discarded=overloaded with Retry-After', async () => {
    const target = app({ INFLIGHT_MAX_BYTES: '100' });
    await expectAnswer(await post(target, { ProductName: 'App', Comments: 'x'.repeat(200) }), 503, 'Discarded=overloaded');
    assert.equal(await target.rejected('overloaded'), 1);
  });

  test('shutting down: 503 Discarded=shutting_down with Retry-After', async () => {
    const target = app();
    target.state.accepting = false;
    await expectAnswer(await post(target, { ProductName: 'App' }), 503, 'Discarded=shutting_down');
    assert.equal(await target.rejected('shutting_down'), 1);
  });

  test('a uuid annotation without a token that may set crash IDs: 401 Discarded=unauthorized_uuid', async () => {
    const target = app();
    await expectAnswer(await post(target, { ProductName: 'App', uuid: newCrashId(new Date()) }), 401, 'Discarded=unauthorized_uuid');
  });

  test('GET /submit: 405 with Allow: POST', async () => {
    const answer = await app().hono.request('/submit');
    assert.equal(answer.status, 405);
    assert.equal(answer.headers.get('allow'), 'POST');
  });
});

describe('/submit answers with UPLOAD_TOKENS', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'crashspool-tokens-')), 'tokens.json');
  const token = (name: string) => `${name}-token-0123456789`;
  writeFileSync(
    file,
    JSON.stringify({
      tokens: [
        { token: token('app'), name: 'app', products: ['App'], max_per_minute: 2 },
        { token: token('stage'), name: 'stage', may_set_crash_id: true },
      ],
    }),
  );

  test('no token or an unknown one: 401 Discarded=unauthorized; a product not in the list: 403 Discarded=forbidden_product', async () => {
    const target = app({}, file);
    await expectAnswer(await post(target, { ProductName: 'App' }), 401, 'Discarded=unauthorized');
    await expectAnswer(await post(target, { ProductName: 'App' }, '/submit?token=nope-nope-nope-nope'), 401, 'Discarded=unauthorized');
    await expectAnswer(await post(target, { ProductName: 'Other' }, `/submit?token=${token('app')}`), 403, 'Discarded=forbidden_product');
    assert.equal(await target.rejected('unauthorized'), 2);
  });

  test('over max_per_minute: 200 Discarded=rate_limited (a 4xx/5xx makes retrying clients hammer)', async () => {
    const target = app({}, file);
    for (let sent = 0; sent < 2; sent++) await expectAnswer(await post(target, { ProductName: 'App' }, `/submit?token=${token('app')}`), 200, CRASH_ID_ANSWER);
    await expectAnswer(await post(target, { ProductName: 'App' }, `/submit?token=${token('app')}`), 200, 'Discarded=rate_limited');
    assert.equal(target.spool.crashes.length, 2);
    assert.ok(target.spool.crashes.every((crash) => !JSON.stringify(crash.rawCrash).includes(token('app'))), 'the token is never stored');
  });

  test('a stage submitter: its own valid crash ID is used; an invalid one is 400 Discarded=malformed_invalid_uuid', async () => {
    const target = app({}, file);
    const chosen = newCrashId(new Date());
    await expectAnswer(await post(target, { ProductName: 'App', uuid: chosen }, `/submit?token=${token('stage')}`), 200, `CrashID=bp-${chosen}\n`);
    await expectAnswer(await post(target, { ProductName: 'App', uuid: 'not-a-crash-id' }, `/submit?token=${token('stage')}`), 400, 'Discarded=malformed_invalid_uuid');
  });
});

describe('health and version', () => {
  test('/__lbheartbeat__: 200 OK, 503 with Retry-After once shutdown began', async () => {
    const target = app();
    const ok = await target.hono.request('/__lbheartbeat__');
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), 'OK\n');
    target.state.routable = false;
    const down = await target.hono.request('/__lbheartbeat__');
    assert.equal(down.status, 503);
    assert.equal(down.headers.get('retry-after'), '30');
  });

  test('/__heartbeat__: the health document as JSON, with its status', async () => {
    const target = app();
    const healthy = await target.hono.request('/__heartbeat__');
    assert.equal(healthy.status, 200);
    assert.deepEqual(await healthy.json(), { status: 'ok' });
    target.health.healthy = false;
    assert.equal((await target.hono.request('/__heartbeat__')).status, 503);
  });

  test('/__version__: exactly source, version, commit, build', async () => {
    const answer = await app().hono.request('/__version__');
    assert.deepEqual(Object.keys((await answer.json()) as object).sort(), ['build', 'commit', 'source', 'version']);
  });
});
