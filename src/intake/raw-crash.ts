/**
 * Builds the Antenna-compatible raw crash: every annotation the client sent, plus the collector's
 * own fields. Annotation names differ between clients (Breakpad `prod`/`ver`, Electron
 * `_productName`, Mozilla `ProductName`); `ProductName`/`Version` are added when missing, without
 * changing or dropping what the client sent, and each addition is noted.
 */
import type { Annotations, Crash, ParsedReport, RawCrash } from '../crash.js';
import { sha256Hex } from '../sha256.js';
import { newCrashId, type ThrottleDigit } from '../crash-id.js';
import { cleanText, findingNotes, noFindings, quoted } from '../report/annotation-text.js';

export type ClientKind = 'mozilla' | 'electron' | 'crashpad' | 'breakpad';

export interface ReceivedReport {
  report: ParsedReport;
  receivedAt: Date;
  userAgent: string;
  /** URL query parameters (Crashpad may send `?product=&version=&guid=`). */
  query: Record<string, string>;
  /** Annotation keys to remove before storage (personal data). */
  removeKeys: readonly string[];
}

// Electron sends its own name as `prod`/`ver` and the app's as `_productName`/`_version`: the app's come first.
const PRODUCT_ALIASES = ['_productName', 'prod', 'product'];
const VERSION_ALIASES = ['_version', 'ver', 'version'];

export function clientKind(report: ParsedReport, userAgent: string): ClientKind {
  const a = report.annotations;
  if (report.payload === 'json' || Object.hasOwn(a, 'ProductName')) return 'mozilla';
  if (Object.hasOwn(a, '_productName') || a['prod'] === 'Electron') return 'electron';
  if (/crashpad/i.test(userAgent) || report.compressed) return 'crashpad';
  return 'breakpad';
}

function firstString(annotations: Record<string, unknown>, keys: string[]): [string, string] | undefined {
  for (const key of keys) {
    const value = annotations[key];
    if (typeof value === 'string' && value !== '') return [key, value];
  }
  return undefined;
}

/** Raw-crash fields the collector writes itself; a URL query parameter of that name is kept as `query_<name>`. */
const COLLECTOR_FIELDS = new Set(['metadata', 'submitted_timestamp', 'uuid', 'version']);

/** The annotations as stored (before personal data is removed) and the notes on how they were made. */
export interface AnnotatedReport {
  annotations: Annotations;
  notes: string[];
}

/**
 * Adds what the URL query carried and the canonical `ProductName`/`Version`. The throttler decides
 * on the result, as Antenna's throttles on the raw crash.
 */
export function annotate(received: ReceivedReport): AnnotatedReport {
  const { report } = received;
  const notes: string[] = [...report.notes];
  // No prototype, and only own keys count: a client's `__proto__` or `toString` is just a key.
  const annotations: Annotations = Object.assign(Object.create(null), report.annotations);

  for (const [sentKey, sentValue] of Object.entries(received.query)) {
    const findings = noFindings();
    const cleanKey = cleanText(sentKey, findings);
    const value = cleanText(sentValue, findings);
    notes.push(...findingNotes(findings, `URL query parameter ${quoted(cleanKey)}`));
    const key = COLLECTOR_FIELDS.has(cleanKey) ? `query_${cleanKey}` : cleanKey;
    if (Object.hasOwn(annotations, key)) continue;
    annotations[key] = value;
    notes.push(key === cleanKey ? `added ${key} from the URL query` : `added ${key} from the URL query parameter ${cleanKey}`);
  }
  const normalise = (canonical: string, aliases: string[]) => {
    if (Object.hasOwn(annotations, canonical)) return;
    const found = firstString(annotations, aliases);
    if (found) {
      annotations[canonical] = found[1];
      notes.push(`added ${canonical} from ${found[0]}`);
    }
  };
  normalise('ProductName', PRODUCT_ALIASES);
  normalise('Version', VERSION_ALIASES);
  return { annotations, notes };
}

/**
 * The time as Antenna writes it (Python's `datetime.isoformat()` of an aware UTC time):
 * `2026-11-25T10:11:12.345000+00:00`, the fraction left out when it is zero.
 */
export function antennaTimestamp(date: Date): string {
  const iso = date.toISOString();
  const fraction = date.getUTCMilliseconds() === 0 ? '' : `${iso.slice(19, 23)}000`;
  return `${iso.slice(0, 19)}${fraction}+00:00`;
}

/**
 * What the collector decided about the crash: the throttle rule and the digit it puts in the crash
 * ID, a crash ID the sender chose (Antenna's stage submitter), the upload token's name.
 */
export interface CrashMarks {
  rule: string;
  digit: ThrottleDigit;
  crashId?: string;
  uploadToken?: string;
}

/** The crash to spool: the annotations without the personal-data keys, plus Antenna's own fields. */
export function buildCrash(received: ReceivedReport, annotated: AnnotatedReport, marks: CrashMarks): Crash {
  const { report, receivedAt } = received;
  const crashId = marks.crashId ?? newCrashId(receivedAt, marks.digit);
  const notes = [...annotated.notes];
  const removed = received.removeKeys.filter((key) => Object.hasOwn(annotated.annotations, key));
  const removedAny = removed.length > 0;
  // Copied only when something is to be removed: a copy of a prototype-less object shows in per-report profiles.
  const annotations: Annotations = removedAny ? Object.assign(Object.create(null), annotated.annotations) : annotated.annotations;
  for (const key of removed) {
    delete annotations[key];
    notes.push(`Removed ${key} from raw crash.`);
  }

  const dumpChecksums: Record<string, string> = Object.create(null);
  for (const dump of report.dumps) {
    dumpChecksums[dump.name] = sha256Hex(dump.data);
    if (dump.data.subarray(0, 4).toString('latin1') !== 'MDMP') notes.push(`${dump.name} has no MDMP magic`);
  }

  const rawCrash: RawCrash = {
    ...annotations,
    submitted_timestamp: antennaTimestamp(receivedAt),
    uuid: crashId,
    version: 2,
    metadata: {
      collector_notes: notes,
      dump_checksums: dumpChecksums,
      payload: report.payload,
      payload_compressed: report.compressed ? '1' : '0',
      payload_size: report.payloadSize,
      throttle_rule: marks.rule,
      user_agent: received.userAgent,
      ...(marks.uploadToken === undefined ? {} : { upload_token: marks.uploadToken }),
    },
  };
  // The body as sent still holds what was removed: then the spool keeps only what it uploads.
  const keepSent = report.sentGzip !== undefined && !removedAny;
  return { crashId, receivedAt: receivedAt.getTime(), rawCrash, dumps: report.dumps, ...(keepSent ? { sentGzip: report.sentGzip } : {}) };
}
