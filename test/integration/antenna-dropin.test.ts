/**
 * Replacing Antenna without touching clients or Socorro, against the real collector process:
 * throttle rules (a JSON file; the `mozilla` preset fed a corpus, one report per rule), Antenna's
 * personal-data list, its annotation semantics and its answers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { CollectorProcess, MAIN, tempDir } from '../helpers/collector-process.js';
import { FIXTURES_DIR, loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, send, type Answer } from '../helpers/http-client.js';
import { multipart, type Part } from '../helpers/multipart.js';
import { metric, scrape } from '../helpers/metrics-text.js';
import { rawCrashKey } from '../../src/storage/storage-keys.js';

const dump = loadFixtureDumps().get('minidump2.dmp')!;
const theDump: Part = { name: 'upload_file_minidump', filename: 'a.dmp', data: dump };

type RawCrash = Record<string, unknown> & { uuid: string; metadata: { throttle_rule: string; collector_notes: string[] } };

function postForm(url: string, parts: Part[], path = '/submit'): Promise<Answer> {
  const built = multipart(parts);
  return send(url, built.body, { path, headers: { 'Content-Type': built.contentType } });
}

const fields = (annotations: Record<string, string>): Part[] => Object.entries(annotations).map(([name, value]) => ({ name, value }));

/**
 * A Firefox-style report: annotations in a JSON `extra` file part, then the dump. Firefox sends no
 * install guid, so each report gets dump bytes of its own (else it would be a repeat of the last).
 */
const mozillaReport = (extra: Record<string, unknown>): Part[] => [
  { name: 'extra', filename: 'extra.json', data: Buffer.from(JSON.stringify(extra)), contentType: 'application/json' },
  { ...theDump, data: Buffer.concat([dump, randomBytes(16)]) },
];

/** A collector draining to a directory, and a way to read what it stored. */
async function startWithFiles(env: Record<string, string>) {
  const files = tempDir('files');
  const collector = await CollectorProcess.start({ SPOOL_DIR: tempDir('spool'), STORAGE_URL: `file://${files}`, ...env });
  const uploaded = (crashId: string) => collector.waitForLog((line) => line.msg === 'crash uploaded' && line['crash_id'] === crashId);
  const stored = async (crashId: string): Promise<RawCrash> => {
    await uploaded(crashId);
    return JSON.parse(readFileSync(join(files, rawCrashKey(crashId)), 'utf8')) as RawCrash;
  };
  const isStored = (crashId: string) => existsSync(join(files, rawCrashKey(crashId)));
  return { collector, stored, isStored };
}

/** The example rules file of docs/CONFIGURATION.md (test/fixtures/throttle-rules.json). */
const RULES_FILE = join(FIXTURES_DIR, 'throttle-rules.json');
const RULES = JSON.parse(readFileSync(RULES_FILE, 'utf8')) as { rules: unknown[] };

describe('THROTTLE_RULES from a JSON file', () => {
  let running: Awaited<ReturnType<typeof startWithFiles>>;
  before(async () => {
    running = await startWithFiles({ THROTTLE_RULES: RULES_FILE });
  });
  after(() => running.collector.stop());

  test('reject answers 200 Discarded=rule_<name> and stores nothing; fakeaccept answers a crash ID and stores nothing', async () => {
    const rejected = await postForm(running.collector.url, [...fields({ ProductName: 'Beta', Channel: 'ancient' }), theDump]);
    assert.equal(rejected.status, 200);
    assert.equal(rejected.body, 'Discarded=rule_drop_old_beta');

    const faked = crashIdFrom(await postForm(running.collector.url, [...fields({ ProductName: 'Spam' }), theDump]));
    assert.equal(faked.slice(-7, -6), '3', "Antenna's FAKEACCEPT digit");

    const kept = crashIdFrom(await postForm(running.collector.url, [...fields({ ProductName: 'Beta', Channel: 'new', Comments: 'it broke' }), theDump]));
    assert.equal(kept.slice(-7, -6), '0');
    const raw = await running.stored(kept);
    assert.equal(raw.metadata.throttle_rule, 'has_comment');
    // The accepted crash was uploaded after the other two were answered: they would be there by now.
    assert.equal(running.isStored(faked), false);
    assert.equal(running.collector.logs.filter((line) => line.msg === 'crash accepted').length, 1);
  });

  test('accept_percent keeps about that share; the rest is answered as a reject; decisions are metrics', async () => {
    const posts = 200;
    const answers = await Promise.all(
      Array.from({ length: posts }, () => postForm(running.collector.url, fields({ ProductName: 'App', Channel: 'release' }))),
    );
    const accepted = answers.filter((answer) => answer.body.startsWith('CrashID=bp-'));
    const rejected = answers.filter((answer) => answer.body === 'Discarded=rule_release_sample');
    assert.equal(accepted.length + rejected.length, posts, answers.map((answer) => answer.body).find((body) => !/^(CrashID|Discarded=rule_)/.test(body)));
    // Binomial(200, 0.1): 20 ± 4.2; 4..45 fails by chance less than once in a million runs.
    assert.ok(accepted.length >= 4 && accepted.length <= 45, `accepted ${accepted.length} of ${posts}`);
    const raw = await running.stored(crashIdFrom(accepted[0]!));
    assert.equal(raw.metadata.throttle_rule, 'release_sample');

    const text = await scrape(running.collector.url);
    const decisions = (rule: string, result: string) => metric(text, 'crashspool_throttle_decisions_total', { rule, result });
    assert.equal(decisions('release_sample', 'accept'), accepted.length);
    assert.equal(decisions('release_sample', 'reject'), rejected.length);
    assert.equal(decisions('drop_old_beta', 'reject'), 1);
    assert.equal(decisions('spam', 'fakeaccept'), 1);
    assert.equal(decisions('has_comment', 'accept'), 1);
  });
});

test('a bad rules file stops the start with exit 2, naming the file, the rule and the field; the spool is not touched', () => {
  const dir = tempDir('rules');
  const file = join(dir, 'rules.json');
  writeFileSync(file, JSON.stringify({ rules: [RULES.rules[0], { name: 'sample', when: { ProductName: 'App' }, then: { accept_percent: 150 } }] }));
  const spool = join(dir, 'spool');
  const result = spawnSync(process.execPath, [MAIN], {
    env: { PATH: process.env['PATH'] ?? '', SPOOL_DIR: spool, THROTTLE_RULES: file, PORT: '0' },
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(result.status, 2, result.stderr);
  assert.equal(
    result.stderr.trim(),
    `crashspool: THROTTLE_RULES: ${file}: rule #2 "sample": field "then.accept_percent": expected a percentage 0..100, got 150`,
  );
  assert.equal(existsSync(spool), false);
});

/**
 * One report per rule of Antenna's MOZILLA_RULES, in its order, and the decisions Antenna's table
 * allows for it (`<result>:<deciding rule>`). A sampled rule that lets a report go on decides
 * nothing; the next matching rule does.
 */
const MOZILLA_CORPUS: { rule: string; extra: Record<string, unknown>; allowed: string[] }[] = [
  { rule: 'has_old_buildid', extra: { ProductName: 'Firefox', BuildID: '20170505000000' }, allowed: ['reject:has_old_buildid'] },
  {
    rule: 'has_hangid_and_browser',
    extra: { ProductName: 'Firefox', HangID: 'xyz', ProcessType: 'browser' },
    allowed: ['reject:has_hangid_and_browser'],
  },
  {
    rule: 'infobar_is_true',
    // Not a 14-digit build ID, so has_old_buildid passes it; this rule compares it as text.
    extra: { ProductName: 'Firefox', SubmittedFromInfobar: 'true', Version: '57.0', BuildID: '20171128' },
    allowed: ['reject:infobar_is_true'],
  },
  { rule: 'b2g', extra: { ProductName: 'B2G' }, allowed: ['fakeaccept:b2g'] },
  { rule: 'unsupported_product', extra: { ProductName: 'testproduct' }, allowed: ['reject:unsupported_product'] },
  {
    rule: 'unsupported_packagename',
    extra: { ProductName: 'Fenix', Android_PackageName: 'org.mozilla.fenix.nightly' },
    allowed: ['reject:unsupported_packagename'],
  },
  { rule: 'throttleable_0', extra: { ProductName: 'Firefox', ReleaseChannel: 'release', Throttleable: '0' }, allowed: ['accept:throttleable_0'] },
  { rule: 'has_comments', extra: { ProductName: 'Firefox', ReleaseChannel: 'release', Comments: 'it crashed' }, allowed: ['accept:has_comments'] },
  { rule: 'has_phc', extra: { ProductName: 'Firefox', ReleaseChannel: 'release', PHCKind: 'FreedPage' }, allowed: ['accept:has_phc'] },
  { rule: 'is_background', extra: { ProductName: 'Firefox', ReleaseChannel: 'release', ProcessType: 'gpu' }, allowed: ['accept:is_background'] },
  {
    rule: 'is_shutdownkill',
    extra: { ProductName: 'Thunderbird', ReleaseChannel: 'release', ipc_channel_error: 'ShutDownKill' },
    allowed: ['reject:is_shutdownkill', 'accept:accept_everything'],
  },
  {
    rule: 'is_firefox_esr_unsupported_windows',
    extra: {
      ProductName: 'Firefox',
      ReleaseChannel: 'esr',
      TelemetryEnvironment: JSON.stringify({ system: { os: { name: 'Windows_NT', windowsBuildNumber: 9600 } } }),
    },
    allowed: ['reject:is_firefox_esr_unsupported_windows', 'accept:is_alpha_beta_esr'],
  },
  { rule: 'is_alpha_beta_esr', extra: { ProductName: 'Firefox', ReleaseChannel: 'beta' }, allowed: ['accept:is_alpha_beta_esr'] },
  { rule: 'is_nightly', extra: { ProductName: 'Firefox', ReleaseChannel: 'nightly' }, allowed: ['accept:is_nightly'] },
  {
    rule: 'is_firefox_desktop',
    extra: { ProductName: 'Firefox', ReleaseChannel: 'release' },
    allowed: ['accept:is_firefox_desktop', 'reject:is_firefox_desktop'],
  },
  { rule: 'accept_everything', extra: { ProductName: 'Thunderbird', ReleaseChannel: 'release' }, allowed: ['accept:accept_everything'] },
];

test("THROTTLE_RULES=mozilla: each rule of Antenna's table fires on its report, with Antenna's answer", async () => {
  const running = await startWithFiles({ THROTTLE_RULES: 'mozilla' });
  try {
    for (const entry of MOZILLA_CORPUS) {
      const answer = await postForm(running.collector.url, mozillaReport(entry.extra));
      assert.equal(answer.status, 200, `${entry.rule}: ${answer.body}`);
      let decision: string;
      const rejectedBy = /^Discarded=rule_(\w+)$/.exec(answer.body);
      if (rejectedBy) {
        decision = `reject:${rejectedBy[1]}`;
      } else {
        const crashId = crashIdFrom(answer);
        if (crashId.slice(-7, -6) === '3') {
          const logged = await running.collector.waitForLog((line) => line['crash_id'] === crashId);
          assert.equal(logged.msg, 'crash fake-accepted by throttle rule; nothing stored');
          decision = `fakeaccept:${String(logged['throttle_rule'])}`;
        } else {
          decision = `accept:${(await running.stored(crashId)).metadata.throttle_rule}`;
        }
      }
      assert.ok(entry.allowed.includes(decision), `${entry.rule}: decided ${decision}, allowed ${entry.allowed.join(' | ')}`);
    }
  } finally {
    await running.collector.stop();
  }
});

const PERSONAL = { Email: 'someone@example.com', TelemetryClientId: 'c1', TelemetryServerURL: 'https://t', TelemetrySessionId: 's1' };

test("Antenna's personal-data list is removed by default with its note; REMOVE_ANNOTATIONS= (empty) keeps everything", async () => {
  const byDefault = await startWithFiles({});
  try {
    const crashId = crashIdFrom(await postForm(byDefault.collector.url, mozillaReport({ ProductName: 'Firefox', ...PERSONAL })));
    const raw = await byDefault.stored(crashId);
    for (const key of Object.keys(PERSONAL)) {
      assert.ok(!(key in raw), `${key} removed`);
      assert.ok(raw.metadata.collector_notes.includes(`Removed ${key} from raw crash.`), key);
    }
    assert.equal(raw['ProductName'], 'Firefox');
  } finally {
    await byDefault.collector.stop();
  }
  const keepAll = await startWithFiles({ REMOVE_ANNOTATIONS: '' });
  try {
    const raw = await keepAll.stored(crashIdFrom(await postForm(keepAll.collector.url, mozillaReport({ ProductName: 'Firefox', ...PERSONAL }))));
    for (const [key, value] of Object.entries(PERSONAL)) assert.equal(raw[key], value);
    assert.ok(!raw.metadata.collector_notes.some((note) => note.startsWith('Removed ')));
  } finally {
    await keepAll.collector.stop();
  }
});

test("annotations as Antenna reads them: JSON extra replaces what came before; other content types noted; the query's version kept apart", async () => {
  const running = await startWithFiles({});
  try {
    const crashId = crashIdFrom(
      await postForm(
        running.collector.url,
        [
          ...fields({ EarlyKey: 'replaced', ProductName: 'FromForm' }),
          { name: 'extra', filename: 'extra.json', data: Buffer.from('{"ProductName":"Firefox","Version":"120.0"}'), contentType: 'application/json' },
          { name: 'Notes', value: '<p>hi</p>', contentType: 'text/html' },
          theDump,
          { name: 'memory_report', filename: 'memory.json.gz', data: Buffer.from('gz'), contentType: 'application/gzip' },
        ],
        '/submit?version=9.9&channel=beta',
      ),
    );
    const raw = await running.stored(crashId);
    assert.equal(raw['ProductName'], 'Firefox');
    assert.equal(raw['EarlyKey'], undefined, 'sent before the JSON extra: replaced');
    assert.equal(raw['Notes'], '<p>hi</p>', 'sent after it: added');
    assert.equal(raw['version'], 2, "the raw crash's format version");
    assert.equal(raw['query_version'], '9.9');
    assert.equal(raw['channel'], 'beta');
    const notes = raw.metadata.collector_notes;
    for (const note of [
      'includes annotations in both json-encoded extra and formdata parts',
      'unknown content type: Notes text/html',
      'unknown content type: memory_report application/gzip',
      'added query_version from the URL query parameter version',
      'added channel from the URL query',
    ]) {
      assert.ok(notes.includes(note), `note "${note}" in ${JSON.stringify(notes)}`);
    }
    assert.ok(!notes.includes('added version from the URL query'));
  } finally {
    await running.collector.stop();
  }
});
