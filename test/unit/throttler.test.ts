/**
 * The throttler as pure logic: each rule of the Mozilla preset with the cases of Antenna's
 * tests/test_throttler.py, the sampling boundary, and the JSON rules file (conditions, validation).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Annotations } from '../../src/crash.js';
import { FIXTURES_DIR } from '../helpers/fixtures.js';
import { Throttler, type ThrottleDecision } from '../../src/policy/throttler.js';
import { buildIdOlderThan, matchUnsupportedWindows, MOZILLA_RULES } from '../../src/policy/mozilla-rules.js';
import { loadThrottleRules, parseThrottleRules, ThrottleRulesError } from '../../src/policy/throttle-rules-file.js';

const NOW = new Date('2026-11-30T12:00:00Z');
/** A draw of 0.05 lands inside every sample (≥ 10 %), 0.99 outside every one. */
const mozilla = (annotations: Annotations, draw = 0.99): ThrottleDecision =>
  new Throttler(MOZILLA_RULES, () => draw, () => NOW).decide(annotations);

const firefox = { ProductName: 'Firefox', ReleaseChannel: 'release', BuildID: '20261101000000', Version: '145.0' };
const windows = (build: unknown) => JSON.stringify({ system: { os: { name: 'Windows_NT', windowsBuildNumber: build } } });

describe('Mozilla preset: one test per rule, in Antenna order', () => {
  test('the rule names and order are MOZILLA_RULES', () => {
    assert.deepEqual(
      MOZILLA_RULES.map((rule) => rule.name),
      [
        'has_old_buildid',
        'has_hangid_and_browser',
        'infobar_is_true',
        'b2g',
        'unsupported_product',
        'unsupported_packagename',
        'throttleable_0',
        'has_comments',
        'has_phc',
        'is_background',
        'is_shutdownkill',
        'is_firefox_esr_unsupported_windows',
        'is_alpha_beta_esr',
        'is_nightly',
        'is_firefox_desktop',
        'accept_everything',
      ],
    );
  });

  test('has_old_buildid: a valid build ID more than 730 days old is rejected', () => {
    assert.deepEqual(mozilla({ ...firefox, BuildID: '20170505000000' }), { verdict: 'reject', rule: 'has_old_buildid' });
    const frozen = new Date('2020-05-27T12:00:00Z');
    for (const [buildId, old] of [
      ['20170101000000', true],
      ['20180528000000', true],
      ['20180529000000', false],
      ['20200527000000', false],
      ['', false],
      ['None', false],
      ['abc', false],
      ['20220404', false],
      ['11111111111111', false],
      ['20181301000000', false],
    ] as const) {
      assert.equal(buildIdOlderThan(buildId, 730, frozen), old, buildId);
    }
  });

  test('has_hangid_and_browser: a HangID from the browser process (the default) is rejected', () => {
    assert.equal(mozilla({ ...firefox, HangID: 'xyz' }).rule, 'has_hangid_and_browser');
    assert.equal(mozilla({ ...firefox, HangID: 'xyz', ProcessType: 'browser' }).verdict, 'reject');
    assert.notEqual(mozilla({ ...firefox, HangID: 'xyz', ProcessType: 'content' }).rule, 'has_hangid_and_browser');
  });

  test('infobar_is_true: Firefox 52–59 from the infobar with a build before 20171226', () => {
    const infobar = { ProductName: 'Firefox', SubmittedFromInfobar: 'true', BuildID: '20171223222554' };
    // Antenna's test clock: the build is less than 730 days old then, so has_old_buildid does not catch it first.
    const clock = new Throttler(MOZILLA_RULES, () => 0.99, () => new Date('2019-05-27T12:00:00Z'));
    assert.deepEqual(clock.decide({ ...infobar, Version: '52.0.2' }), { verdict: 'reject', rule: 'infobar_is_true' });
    for (const [version, expected] of [['51.0', false], ['60.0', false], ['59.0', true], ['57.0.2', true], ['52.0', true]] as const) {
      assert.equal(clock.decide({ ...infobar, Version: version }).rule === 'infobar_is_true', expected, version);
    }
    assert.notEqual(clock.decide({ ...infobar, Version: '57.0', BuildID: '20171226003912' }).rule, 'infobar_is_true');
    assert.notEqual(clock.decide({ ...infobar, Version: '57.0', SubmittedFromInfobar: 'false' }).rule, 'infobar_is_true');
  });

  test('b2g: fake-accepted, any case', () => {
    assert.deepEqual(mozilla({ ProductName: 'B2G' }), { verdict: 'fakeaccept', rule: 'b2g' });
    assert.deepEqual(mozilla({ ProductName: 'b2g' }), { verdict: 'fakeaccept', rule: 'b2g' });
  });

  test('unsupported_product: names are case-sensitive; a missing ProductName is unsupported', () => {
    for (const product of ['', 'firefox', 'testproduct']) {
      assert.deepEqual(mozilla({ ProductName: product }), { verdict: 'reject', rule: 'unsupported_product' }, product);
    }
    assert.deepEqual(mozilla({ Version: '1' }), { verdict: 'reject', rule: 'unsupported_product' });
    assert.notEqual(mozilla({ ProductName: 'Thunderbird' }).rule, 'unsupported_product');
  });

  test('unsupported_packagename: Fenix/Focus/ReferenceBrowser need a listed Android_PackageName', () => {
    assert.deepEqual(mozilla({ ProductName: 'Fenix' }), { verdict: 'reject', rule: 'unsupported_packagename' });
    assert.deepEqual(mozilla({ ProductName: 'Focus', Android_PackageName: 'org.mozilla.fenix' }).rule, 'unsupported_packagename');
    assert.deepEqual(mozilla({ ProductName: 'Fenix', Android_PackageName: 'org.mozilla.firefox' }), { verdict: 'accept', rule: 'accept_everything' });
    assert.deepEqual(mozilla({ ProductName: 'Focus', Android_PackageName: 'org.mozilla.klar' }).verdict, 'accept');
  });

  test('throttleable_0, has_comments, has_phc, is_background: accepted', () => {
    assert.deepEqual(mozilla({ ...firefox, Throttleable: '0' }), { verdict: 'accept', rule: 'throttleable_0' });
    assert.notEqual(mozilla({ ...firefox, Throttleable: '1' }).rule, 'throttleable_0');
    assert.deepEqual(mozilla({ ...firefox, Comments: '' }), { verdict: 'accept', rule: 'has_comments' });
    assert.deepEqual(mozilla({ ...firefox, PHCKind: 'FreedPage' }), { verdict: 'accept', rule: 'has_phc' });
    for (const processType of ['gpu', 'plugin', 'rdd', 'socket', 'utility']) {
      assert.deepEqual(mozilla({ ...firefox, ProcessType: processType }), { verdict: 'accept', rule: 'is_background' });
    }
    assert.notEqual(mozilla({ ...firefox, ProcessType: 'content' }).rule, 'is_background');
  });

  test('is_shutdownkill: 10 % go on to the next rules, 90 % are rejected', () => {
    const shutdownKill = { ...firefox, ReleaseChannel: 'beta', ipc_channel_error: 'ShutDownKill' };
    assert.deepEqual(mozilla(shutdownKill, 0.1), { verdict: 'accept', rule: 'is_alpha_beta_esr' });
    assert.deepEqual(mozilla(shutdownKill, 0.1001), { verdict: 'reject', rule: 'is_shutdownkill' });
  });

  test('is_firefox_esr_unsupported_windows: 25 % of ESR on Windows 8.1 or older go on, the rest rejected', () => {
    const esr = { ...firefox, ReleaseChannel: 'esr', TelemetryEnvironment: windows(9600) };
    assert.deepEqual(mozilla(esr, 0.25), { verdict: 'accept', rule: 'is_alpha_beta_esr' });
    assert.deepEqual(mozilla(esr, 0.26), { verdict: 'reject', rule: 'is_firefox_esr_unsupported_windows' });
    assert.deepEqual(mozilla({ ...esr, TelemetryEnvironment: windows(10240) }, 0.99), { verdict: 'accept', rule: 'is_alpha_beta_esr' });
    for (const environment of ['', '{}', '{"system":{}}', '{"system":{"os":{}}}', '{"system":{"os":{"name":""}}}', windows(''), windows(null), '{bad']) {
      assert.equal(matchUnsupportedWindows({ TelemetryEnvironment: environment }), false, environment);
    }
    for (const [build, old] of [[7601, true], [9200, true], [9600, true], [10240, false]] as const) {
      assert.equal(matchUnsupportedWindows({ TelemetryEnvironment: windows(build) }), old, String(build));
    }
  });

  test('is_alpha_beta_esr and is_nightly: accepted', () => {
    for (const channel of ['aurora', 'beta', 'esr']) {
      assert.deepEqual(mozilla({ ...firefox, ReleaseChannel: channel }), { verdict: 'accept', rule: 'is_alpha_beta_esr' });
    }
    assert.deepEqual(mozilla({ ...firefox, ReleaseChannel: 'nightly-autoland' }), { verdict: 'accept', rule: 'is_nightly' });
  });

  test('is_firefox_desktop: 10 % of Firefox release accepted, the rest rejected', () => {
    assert.deepEqual(mozilla(firefox, 0.1), { verdict: 'accept', rule: 'is_firefox_desktop' });
    assert.deepEqual(mozilla(firefox, 0.11), { verdict: 'reject', rule: 'is_firefox_desktop' });
  });

  test('accept_everything: what no other rule takes (Thunderbird release)', () => {
    assert.deepEqual(mozilla({ ProductName: 'Thunderbird', ReleaseChannel: 'release', BuildID: '20261101000000' }), {
      verdict: 'accept',
      rule: 'accept_everything',
    });
  });

  test('JSON values are compared as text, as Antenna str()s them', () => {
    assert.deepEqual(mozilla({ ProductName: 'Firefox', ReleaseChannel: 'release', Throttleable: 0 }), { verdict: 'accept', rule: 'throttleable_0' });
  });
});

/** The example rules file of docs/CONFIGURATION.md. */
const EXAMPLE = readFileSync(join(FIXTURES_DIR, 'throttle-rules.json'), 'utf8');

describe('JSON rules file', () => {
  const decide = (json: string, annotations: Annotations, draw = 0.5) =>
    new Throttler(parseThrottleRules(json, 'rules.json'), () => draw, () => NOW).decide(annotations);

  test("the issue's example file decides as written", () => {
    assert.deepEqual(decide(EXAMPLE, { ProductName: 'Beta', Channel: 'ancient' }), { verdict: 'reject', rule: 'drop_old_beta' });
    assert.equal(decide(EXAMPLE, { ProductName: 'Beta', Channel: 'new' }).rule, 'everything_else');
    assert.deepEqual(decide(EXAMPLE, { ProductName: 'Spam' }), { verdict: 'fakeaccept', rule: 'spam' });
    assert.deepEqual(decide(EXAMPLE, { ProductName: 'App', Comments: '' }), { verdict: 'accept', rule: 'has_comment' });
    assert.deepEqual(decide(EXAMPLE, { ProductName: 'App', Channel: 'release' }, 0.1), { verdict: 'accept', rule: 'release_sample' });
    assert.deepEqual(decide(EXAMPLE, { ProductName: 'App', Channel: 'release' }, 0.5), { verdict: 'reject', rule: 'release_sample' });
  });

  test('no matching rule accepts as accept_everything', () => {
    const rules = JSON.stringify({ rules: [{ name: 'only_spam', when: { ProductName: 'Spam' }, then: 'reject' }] });
    assert.deepEqual(decide(rules, { ProductName: 'App' }), { verdict: 'accept', rule: 'accept_everything' });
  });

  test('conditions: regex, prefix, not, exists false, older_than_days, continue_percent', () => {
    const rules = JSON.stringify({
      rules: [
        { name: 'old_build', when: { BuildID: { older_than_days: 365 } }, then: 'reject' },
        { name: 'no_version', when: { Version: { exists: false } }, then: 'reject' },
        { name: 'not_app', when: { ProductName: { not: ['App', 'Tool'] } }, then: 'reject' },
        { name: 'sampled', when: { Kind: 'noise' }, then: { continue_percent: 20 } },
        { name: 'nightly', when: { Channel: { prefix: 'nightly' } }, then: 'accept' },
        { name: 'debug', when: { Version: { regex: '^\\d+\\.\\d+-debug$' } }, then: 'fakeaccept' },
      ],
    });
    const base = { ProductName: 'App', Version: '1.0' };
    assert.equal(decide(rules, { ...base, BuildID: '20241101000000' }).rule, 'old_build');
    assert.equal(decide(rules, { ...base, BuildID: '20261101000000' }).rule, 'accept_everything');
    assert.equal(decide(rules, { ProductName: 'App' }).rule, 'no_version');
    assert.equal(decide(rules, { ...base, ProductName: 'Other' }).rule, 'not_app');
    assert.equal(decide(rules, { Version: '1' }).rule, 'not_app', 'not matches an absent key');
    assert.deepEqual(decide(rules, { ...base, Kind: 'noise', Channel: 'nightly2' }, 0.2), { verdict: 'accept', rule: 'nightly' });
    assert.deepEqual(decide(rules, { ...base, Kind: 'noise' }, 0.21), { verdict: 'reject', rule: 'sampled' });
    assert.deepEqual(decide(rules, { ...base, Version: '2.1-debug' }), { verdict: 'fakeaccept', rule: 'debug' });
  });

  test('presets by name', () => {
    assert.equal(loadThrottleRules('mozilla'), MOZILLA_RULES);
    assert.deepEqual(
      loadThrottleRules('accept_all').map((rule) => rule.name),
      ['accept_everything'],
    );
  });

  test('every mistake names the file, the rule and the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rules-'));
    const mistakes: [unknown, RegExp][] = [
      [{ rules: [{ name: 'a b', when: {}, then: 'accept' }] }, /rule #1 "a b": field "name": expected letters/],
      [{ rules: [{ name: 'ok', when: {}, then: 'accept' }, { name: 'ok', when: {}, then: 'reject' }] }, /rule #2 "ok": field "name": "ok" is used by an earlier rule/],
      [{ rules: [{ name: 'r', when: {}, then: 'keep' }] }, /rule #1 "r": field "then": expected "accept", "reject", "fakeaccept"/],
      [{ rules: [{ name: 'r', when: {}, then: { accept_percent: 101 } }] }, /field "then.accept_percent": expected a percentage 0..100, got 101/],
      [{ rules: [{ name: 'r', when: { A: { regex: '(' } }, then: 'accept' }] }, /field "when.A.regex": invalid regular expression/],
      [{ rules: [{ name: 'r', when: { A: { equals: 'x' } }, then: 'accept' }] }, /field "when.A.equals": unknown condition/],
      [{ rules: [{ name: 'r', when: { A: 5 } , then: 'accept' }] }, /field "when.A": expected a string, a list of strings/],
      [{ rules: [{ name: 'r', when: { A: [] }, then: 'accept' }] }, /field "when.A": expected a non-empty list of strings/],
      [{ rules: [{ name: 'r', when: { A: { not: { exists: 'yes' } } }, then: 'accept' }] }, /field "when.A.not.exists": expected true or false/],
      [{ rules: [{ name: 'r', when: { A: { older_than_days: -1 } }, then: 'accept' }] }, /field "when.A.older_than_days"/],
      [{ rules: [{ name: 'r', then: 'accept' }] }, /field "when": missing/],
      [{ rules: [{ name: 'r', when: {}, then: 'accept', comment: 'x' }] }, /field "comment": unknown field/],
      [{ rule: [] }, /expected \{"rules": \[ … \]\} and nothing else/],
    ];
    for (const [index, [document, message]] of mistakes.entries()) {
      const file = join(dir, `rules-${index}.json`);
      writeFileSync(file, JSON.stringify(document));
      assert.throws(() => loadThrottleRules(file), (error: Error) => {
        assert.ok(error instanceof ThrottleRulesError);
        assert.ok(error.message.startsWith(`${file}: `), error.message);
        assert.match(error.message, message);
        return true;
      });
    }
    writeFileSync(join(dir, 'broken.json'), '{"rules": [');
    assert.throws(() => loadThrottleRules(join(dir, 'broken.json')), /broken\.json: not valid JSON/);
    assert.throws(() => loadThrottleRules(join(dir, 'missing.json')), /missing\.json: cannot read the rules file \(ENOENT\)/);
    assert.throws(() => loadThrottleRules('mozila'), /mozila: cannot read the rules file \(ENOENT\); THROTTLE_RULES takes accept_all, mozilla or the path of a JSON rules file/);
  });
});
