/**
 * `THROTTLE_RULES=mozilla`: Antenna's MOZILLA_RULES (antenna/throttler.py), same rule names, order,
 * conditions and percentages, with its supported products and Android package names.
 */
import type { Annotations } from '../crash.js';
import { annotationText } from '../report/annotation-text.js';
import { ACCEPT_EVERYTHING, type ThrottleRule } from './throttler.js';

export const MOZILLA_PRODUCTS: readonly string[] = [
  'Fenix',
  'Firefox',
  'Firefox Enterprise',
  'Focus',
  'MozillaVPN',
  'ReferenceBrowser',
  'Thunderbird',
];

export const MOZILLA_PRODUCT_PACKAGENAMES: Readonly<Record<string, readonly string[]>> = {
  Fenix: ['org.mozilla.firefox', 'org.mozilla.firefox_beta', 'org.mozilla.fenix'],
  Focus: ['org.mozilla.focus', 'org.mozilla.focus.beta', 'org.mozilla.focus.nightly', 'org.mozilla.klar'],
  ReferenceBrowser: ['org.mozilla.reference.browser'],
};

const DAY_MS = 86_400_000;
const BUILD_ID_PATTERN = /^20\d{12}$/;
const WINDOWS_8_1_BUILD_NUMBER = 9600;
const BACKGROUND_PROCESS_TYPES = new Set(['gpu', 'plugin', 'rdd', 'socket', 'utility']);

/** Antenna's `safe_get`: the annotation as text, `fallback` when absent. */
const text = (annotations: Annotations, key: string, fallback = '') => annotationText(annotations, key) ?? fallback;

/** The date a `YYYYMMDDhhmmss` build ID starts with (UTC midnight), or undefined when it is not one. */
export function buildIdDate(buildId: string): Date | undefined {
  if (!BUILD_ID_PATTERN.test(buildId)) return undefined;
  const [year, month, day] = [buildId.slice(0, 4), buildId.slice(4, 6), buildId.slice(6, 8)].map(Number) as [number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  // Rejects 20231301… or 20230231…, as Python's strptime does.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined;
  return date;
}

/** A valid build ID whose date is more than `days` days before `now`. */
export function buildIdOlderThan(buildId: string, days: number, now: Date): boolean {
  const date = buildIdDate(buildId);
  return date !== undefined && date.getTime() < now.getTime() - days * DAY_MS;
}

function matchInfobarTrue(a: Annotations): boolean {
  const [product, infobar, version, buildId] = ['ProductName', 'SubmittedFromInfobar', 'Version', 'BuildID'].map((key) => text(a, key));
  if (!product || !infobar || !version || !buildId) return false;
  return (
    product === 'Firefox' &&
    infobar === 'true' &&
    ['52.', '53.', '54.', '55.', '56.', '57.', '58.', '59.'].some((prefix) => version.startsWith(prefix)) &&
    buildId < '20171226'
  );
}

function matchUnsupportedPackageName(a: Annotations): boolean {
  const packageNames = MOZILLA_PRODUCT_PACKAGENAMES[text(a, 'ProductName')] ?? [];
  // Antenna's safe_get turns a missing value into "None", which is never a supported name.
  return packageNames.length > 0 && !packageNames.includes(text(a, 'Android_PackageName', 'None'));
}

/** TelemetryEnvironment says Windows with a build number of 8.1 or older. */
export function matchUnsupportedWindows(a: Annotations): boolean {
  const environment = text(a, 'TelemetryEnvironment');
  if (!environment) return false;
  let parsed: unknown;
  try {
    parsed = JSON.parse(environment);
  } catch {
    return false;
  }
  const system = (parsed as { system?: unknown } | null)?.system;
  if (!system || typeof system !== 'object' || Array.isArray(system)) return false;
  const os = (system as { os?: unknown }).os;
  if (!os || typeof os !== 'object' || Array.isArray(os)) return false;
  const { name, windowsBuildNumber } = os as { name?: unknown; windowsBuildNumber?: unknown };
  if (name !== 'Windows_NT') return false;
  if (typeof windowsBuildNumber !== 'number' || !Number.isInteger(windowsBuildNumber) || windowsBuildNumber === 0) return false;
  return windowsBuildNumber <= WINDOWS_8_1_BUILD_NUMBER;
}

/** Antenna's keyed rule: matches only when the key is present, then tests its text. */
const whenKey = (key: string, test: (value: string) => boolean) => (a: Annotations) => {
  const value = annotationText(a, key);
  return value !== undefined && test(value);
};

export const MOZILLA_RULES: readonly ThrottleRule[] = [
  { name: 'has_old_buildid', matches: (a, now) => buildIdOlderThan(text(a, 'BuildID'), 730, now), then: 'reject' },
  {
    name: 'has_hangid_and_browser',
    matches: (a) => Object.hasOwn(a, 'HangID') && text(a, 'ProcessType', 'browser') === 'browser',
    then: 'reject',
  },
  { name: 'infobar_is_true', matches: matchInfobarTrue, then: 'reject' },
  // B2G does not handle rejection and retries for ever (bug 1500243).
  { name: 'b2g', matches: (a) => text(a, 'ProductName').toLowerCase() === 'b2g', then: 'fakeaccept' },
  { name: 'unsupported_product', matches: (a) => !MOZILLA_PRODUCTS.includes(text(a, 'ProductName')), then: 'reject' },
  { name: 'unsupported_packagename', matches: matchUnsupportedPackageName, then: 'reject' },
  { name: 'throttleable_0', matches: whenKey('Throttleable', (value) => value === '0'), then: 'accept' },
  { name: 'has_comments', matches: whenKey('Comments', () => true), then: 'accept' },
  { name: 'has_phc', matches: whenKey('PHCKind', () => true), then: 'accept' },
  { name: 'is_background', matches: whenKey('ProcessType', (value) => BACKGROUND_PROCESS_TYPES.has(value)), then: 'accept' },
  {
    name: 'is_shutdownkill',
    matches: whenKey('ipc_channel_error', (value) => value === 'ShutDownKill'),
    then: { percent: 10, sampled: 'continue' },
  },
  {
    name: 'is_firefox_esr_unsupported_windows',
    matches: (a) => text(a, 'ProductName') === 'Firefox' && text(a, 'ReleaseChannel') === 'esr' && matchUnsupportedWindows(a),
    then: { percent: 25, sampled: 'continue' },
  },
  { name: 'is_alpha_beta_esr', matches: whenKey('ReleaseChannel', (value) => ['aurora', 'beta', 'esr'].includes(value)), then: 'accept' },
  { name: 'is_nightly', matches: whenKey('ReleaseChannel', (value) => value.startsWith('nightly')), then: 'accept' },
  {
    name: 'is_firefox_desktop',
    matches: (a) => text(a, 'ProductName') === 'Firefox' && text(a, 'ReleaseChannel') === 'release',
    then: { percent: 10, sampled: 'accept' },
  },
  { name: ACCEPT_EVERYTHING, matches: () => true, then: 'accept' },
];
