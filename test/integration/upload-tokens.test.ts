/**
 * Only known senders get in (UPLOAD_TOKENS), against the real collector process: the token in the
 * query or as a bearer, products, rates, client-chosen crash IDs, a reload on SIGHUP without a
 * dropped request, and the checks under concurrent load. The token is never stored or logged.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CollectorProcess, MAIN, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport, send, type Answer } from '../helpers/http-client.js';
import { makeReport, type Report } from '../helpers/multipart.js';
import { metric, scrape } from '../helpers/metrics-text.js';
import { rawCrashKey } from '../../src/storage/storage-keys.js';
import { newCrashId } from '../../src/crash-id.js';

const dump = loadFixtureDumps().get('minidump2.dmp')!;

const APP_TOKEN = 'app-token-0123456789abcdef';
const RATED_TOKEN = 'rated-token-0123456789abcdef';
const STAGE_TOKEN = 'stage-token-0123456789abcdef';
const LATER_TOKEN = 'later-token-0123456789abcdef';
const PLAIN_TOKEN = 'plain-token-0123456789abcdef';

const TOKENS = {
  tokens: [
    { token: APP_TOKEN, name: 'electron-app', products: ['TestElectronApp', 'TestCrashpadApp'] },
    { token: RATED_TOKEN, name: 'rated', max_per_minute: 5 },
    { token: STAGE_TOKEN, name: 'stage-submitter', may_set_crash_id: true },
    { token: PLAIN_TOKEN, name: 'plain' },
  ],
};

/** Posts `report` with the token in the query (as Crashpad can) or as a bearer. */
function post(url: string, report: Report, token: { query?: string; bearer?: string } = {}): Promise<Answer> {
  const query = token.query === undefined ? report.query : `${report.query}${report.query ? '&' : '?'}token=${encodeURIComponent(token.query)}`;
  return postReport(url, { ...report, query }, token.bearer === undefined ? {} : { Authorization: `Bearer ${token.bearer}` });
}

describe('UPLOAD_TOKENS', () => {
  const dir = tempDir('tokens');
  const tokensFile = join(dir, 'tokens.json');
  const files = tempDir('files');
  let collector: CollectorProcess;
  const stored = async (crashId: string) => {
    await collector.waitForLog((line) => line.msg === 'crash uploaded' && line['crash_id'] === crashId);
    return JSON.parse(readFileSync(join(files, rawCrashKey(crashId)), 'utf8')) as Record<string, unknown> & { metadata: Record<string, unknown> };
  };
  before(async () => {
    writeFileSync(tokensFile, JSON.stringify(TOKENS));
    collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), STORAGE_URL: `file://${files}`, UPLOAD_TOKENS: tokensFile });
  });
  after(() => collector.stop());

  test('no token or an unknown one: 401 Discarded=unauthorized, nothing stored', async () => {
    for (const token of [{}, { query: 'not-a-token-0123456789' }, { bearer: 'not-a-token-0123456789' }, { query: '' }]) {
      const answer = await post(collector.url, makeReport('electron', dump), token);
      assert.equal(answer.status, 401, JSON.stringify(token));
      assert.equal(answer.body, 'Discarded=unauthorized');
    }
    assert.equal(metric(await scrape(collector.url), 'crashspool_crashes_rejected_total', { reason: 'unauthorized' }), 4);
  });

  test('a known token in the query or as a bearer: stored with metadata.upload_token; the token itself nowhere', async () => {
    const viaQuery = crashIdFrom(await post(collector.url, makeReport('electron', dump), { query: APP_TOKEN }));
    const viaBearer = crashIdFrom(await post(collector.url, makeReport('crashpad', dump), { bearer: APP_TOKEN }));
    for (const crashId of [viaQuery, viaBearer]) {
      const raw = await stored(crashId);
      assert.equal(raw.metadata['upload_token'], 'electron-app');
      assert.equal(raw['token'], undefined);
      assert.ok(!JSON.stringify(raw).includes(APP_TOKEN), 'the token is not in the raw crash');
    }
    assert.ok(!collector.logs.some((line) => JSON.stringify(line).includes(APP_TOKEN)), 'the token is not in the log');
  });

  test("a product outside the token's list: 403 Discarded=forbidden_product", async () => {
    const answer = await post(collector.url, makeReport('breakpad', dump), { query: APP_TOKEN });
    assert.equal(answer.status, 403);
    assert.equal(answer.body, 'Discarded=forbidden_product');
  });

  test('over its rate: 200 Discarded=rate_limited', async () => {
    const answers = [];
    for (let n = 0; n < 8; n += 1) answers.push(await post(collector.url, makeReport('breakpad', dump), { query: RATED_TOKEN }));
    const accepted = answers.filter((answer) => answer.body.startsWith('CrashID=bp-')).length;
    const limited = answers.filter((answer) => answer.status === 200 && answer.body === 'Discarded=rate_limited').length;
    assert.equal(accepted, 5, answers.map((answer) => answer.body).join(' | '));
    assert.equal(limited, 3);
  });

  test("a uuid annotation: the crash ID from a token that may set it; 400 when invalid; 401 from anyone else", async () => {
    const chosen = newCrashId(new Date());
    const report = makeReport('breakpad', dump);
    const withUuid = (uuid: string): Report => {
      const boundary = /boundary=(.+)$/.exec(report.contentType)![1]!;
      const part = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="uuid"\r\n\r\n${uuid}\r\n`);
      return { ...report, body: Buffer.concat([part, report.body]) };
    };
    assert.equal(crashIdFrom(await post(collector.url, withUuid(chosen), { bearer: STAGE_TOKEN })), chosen);
    assert.equal(crashIdFrom(await post(collector.url, withUuid(chosen), { bearer: STAGE_TOKEN })), chosen, 'sent again: the same crash');
    const raw = await stored(chosen);
    assert.equal(raw['uuid'], chosen);

    const invalid = await post(collector.url, withUuid('not-a-crash-id'), { bearer: STAGE_TOKEN });
    assert.deepEqual([invalid.status, invalid.body], [400, 'Discarded=malformed_invalid_uuid']);
    const notAllowed = await post(collector.url, withUuid(newCrashId(new Date())), { query: PLAIN_TOKEN });
    assert.deepEqual([notAllowed.status, notAllowed.body], [401, 'Discarded=unauthorized_uuid']);
  });

  test('concurrent load with good, unknown and missing tokens: every answer is the right one', async () => {
    const kinds = ['good', 'unknown', 'missing'] as const;
    const posts = Array.from({ length: 150 }, (_, index) => kinds[index % 3]!);
    const answers = await Promise.all(
      posts.map((kind) =>
        post(collector.url, makeReport('electron', dump), kind === 'good' ? { query: APP_TOKEN } : kind === 'unknown' ? { bearer: 'x'.repeat(20) } : {}),
      ),
    );
    answers.forEach((answer, index) => {
      if (posts[index] === 'good') crashIdFrom(answer);
      else assert.deepEqual([answer.status, answer.body], [401, 'Discarded=unauthorized'], `post ${index} (${posts[index]})`);
    });
  });

  test('SIGHUP re-reads the file while posts go on: a new token works at once, none is dropped; a bad file keeps the old tokens', async () => {
    let posting = true;
    const statuses: number[] = [];
    const poster = (async () => {
      while (posting) statuses.push((await post(collector.url, makeReport('electron', dump), { query: APP_TOKEN })).status);
    })();
    await new Promise((resolve) => setTimeout(resolve, 200));
    writeFileSync(tokensFile, JSON.stringify({ tokens: [...TOKENS.tokens, { token: LATER_TOKEN, name: 'later' }] }));
    collector.kill('SIGHUP');
    await collector.waitForLog((line) => line.msg === 'upload tokens re-read' && line['tokens'] === TOKENS.tokens.length + 1);
    crashIdFrom(await post(collector.url, makeReport('breakpad', dump), { query: LATER_TOKEN }));

    writeFileSync(tokensFile, '{"tokens": [ {"token": "short"} ]}');
    collector.kill('SIGHUP');
    const refused = await collector.waitForLog((line) => line.msg === 'upload tokens file not usable; the tokens read before stay in use');
    assert.match(String(refused['reason']), /token #1 field "token"/);
    crashIdFrom(await post(collector.url, makeReport('breakpad', dump), { query: LATER_TOKEN }));
    posting = false;
    await poster;
    assert.ok(statuses.length > 5, `${statuses.length} posts during the reloads`);
    assert.deepEqual(statuses.filter((status) => status !== 200), [], 'no post failed during the reloads');
    assert.equal(collector.child.exitCode, null, 'SIGHUP does not end the process');
  });
});

test('a bad tokens file stops the start with exit 2 naming the file and the field; open without UPLOAD_TOKENS', async () => {
  const dir = tempDir('tokens');
  const file = join(dir, 'tokens.json');
  writeFileSync(file, JSON.stringify({ tokens: [{ token: APP_TOKEN, name: 'a' }, { token: APP_TOKEN, name: 'b' }] }));
  const spool = join(dir, 'spool');
  const result = spawnSync(process.execPath, [MAIN], {
    env: { PATH: process.env['PATH'] ?? '', SPOOL_DIR: spool, UPLOAD_TOKENS: file, PORT: '0' },
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(result.status, 2, result.stderr);
  assert.equal(result.stderr.trim(), `crashspool: UPLOAD_TOKENS: ${file}: token #2 field "token": the same token as an earlier entry`);
  assert.equal(existsSync(spool), false);

  const files = tempDir('files');
  const open = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), STORAGE_URL: `file://${files}` });
  try {
    crashIdFrom(await post(open.url, makeReport('breakpad', dump)));
    const uuid = await send(open.url, Buffer.from('--b\r\nContent-Disposition: form-data; name="uuid"\r\n\r\nx\r\n--b--\r\n'), {
      headers: { 'Content-Type': 'multipart/form-data; boundary=b' },
    });
    assert.deepEqual([uuid.status, uuid.body], [401, 'Discarded=unauthorized_uuid'], "Antenna: a uuid needs the submitter's token");
  } finally {
    await open.stop();
  }
});

test("a fake-accepted report with a chosen crash ID is answered with that ID, as Antenna", async () => {
  const dir = tempDir('tokens');
  writeFileSync(join(dir, 'tokens.json'), JSON.stringify(TOKENS));
  writeFileSync(join(dir, 'rules.json'), JSON.stringify({ rules: [{ name: 'spam', when: { prod: 'TestApp' }, then: 'fakeaccept' }] }));
  const collector = await CollectorProcess.start({
    SPOOL_DIR: tempDir('spool'),
    STORAGE_URL: `file://${tempDir('files')}`,
    UPLOAD_TOKENS: join(dir, 'tokens.json'),
    THROTTLE_RULES: join(dir, 'rules.json'),
  });
  try {
    const chosen = newCrashId(new Date());
    const report = makeReport('breakpad', dump);
    const boundary = /boundary=(.+)$/.exec(report.contentType)![1]!;
    const body = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="uuid"\r\n\r\n${chosen}\r\n`), report.body]);
    assert.equal(crashIdFrom(await post(collector.url, { ...report, body }, { bearer: STAGE_TOKEN })), chosen);
    const faked = crashIdFrom(await post(collector.url, makeReport('breakpad', dump), { bearer: STAGE_TOKEN }));
    assert.equal(faked.slice(-7, -6), '3', 'without a chosen ID: a new one with the FAKEACCEPT digit');
  } finally {
    await collector.stop();
  }
});
