/**
 * Builds the Antenna-compatible raw crash: every annotation the client sent, plus the collector's
 * own fields. Annotation names differ between clients (Breakpad `prod`/`ver`, Electron
 * `_productName`, Mozilla `ProductName`); `ProductName`/`Version` are added when missing, without
 * changing or dropping what the client sent, and each addition is noted.
 */
import { createHash } from 'node:crypto';
import type { Crash, ParsedReport, RawCrash } from '../crash.js';
import { newCrashId } from '../crash-id.js';
import { cleanText, findingNotes, noFindings, quoted } from './annotation-text.js';

export const THROTTLE_RULE = 'accept_everything';

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

const PRODUCT_ALIASES = ['prod', '_productName', 'product'];
const VERSION_ALIASES = ['ver', '_version', 'version'];

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

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function buildCrash(received: ReceivedReport): Crash {
  const { report, receivedAt } = received;
  const crashId = newCrashId(receivedAt);
  const notes: string[] = [...report.notes];
  // No prototype, and only own keys count: a client's `__proto__` or `toString` is just a key.
  const annotations: Record<string, unknown> = Object.assign(Object.create(null), report.annotations);

  for (const [sentKey, sentValue] of Object.entries(received.query)) {
    const findings = noFindings();
    const key = cleanText(sentKey, findings);
    const value = cleanText(sentValue, findings);
    notes.push(...findingNotes(findings, `URL query parameter ${quoted(key)}`));
    if (!Object.hasOwn(annotations, key)) {
      annotations[key] = value;
      notes.push(`added ${key} from the URL query`);
    }
  }
  for (const key of received.removeKeys) {
    if (Object.hasOwn(annotations, key)) {
      delete annotations[key];
      notes.push(`removed annotation ${key}`);
    }
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

  const dumpChecksums: Record<string, string> = Object.create(null);
  for (const dump of report.dumps) {
    dumpChecksums[dump.name] = sha256Hex(dump.data);
    if (dump.data.subarray(0, 4).toString('latin1') !== 'MDMP') notes.push(`${dump.name} has no MDMP magic`);
  }

  const rawCrash: RawCrash = {
    ...annotations,
    submitted_timestamp: receivedAt.toISOString(),
    uuid: crashId,
    version: 2,
    metadata: {
      collector_notes: notes,
      dump_checksums: dumpChecksums,
      payload: report.payload,
      payload_compressed: report.compressed ? '1' : '0',
      payload_size: report.payloadSize,
      throttle_rule: THROTTLE_RULE,
      user_agent: received.userAgent,
    },
  };
  return { crashId, receivedAt: receivedAt.getTime(), rawCrash, dumps: report.dumps };
}
