/**
 * What makes two posts the same report, so a client's retry gets the first crash ID instead of
 * a second crash — and only a true retry (I10, docs/INVARIANTS.md). A Crashpad report names
 * itself: its minidump is uploaded as `<report-uuid>.dmp`, the same on every retry; with `guid`
 * (the install) that is the identity. Any other report is identified by everything it was sent
 * with: every annotation (in a canonical form, whatever their order) and its dumps' SHA-256, so two
 * reports that differ in any annotation are two crashes. The content (all dumps' SHA-256) tells a
 * retry from a different report under the same UUID.
 */
import { createHash } from 'node:crypto';
import type { Annotations, Dump } from '../crash.js';
import { MAIN_DUMP_FIELD } from '../dump-names.js';
import { annotationText } from '../report/annotation-text.js';

export interface ReportIdentity {
  identity: string;
  content: string;
  reportUuid?: string;
}

const REPORT_FILENAME = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.dmp$/i;

/** 128 bits of SHA-256 over the parts, each length-prefixed so no two lists hash alike. */
function digest(...parts: string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(`${Buffer.byteLength(part)}:${part}`);
  return hash.digest('hex').slice(0, 32);
}

/** Crashpad's report UUID, from the minidump's filename. */
export function reportUuidOf(dumps: readonly Dump[]): string | undefined {
  const filename = dumps.find((dump) => dump.name === MAIN_DUMP_FIELD)?.filename;
  return filename === undefined ? undefined : REPORT_FILENAME.exec(filename)?.[1]?.toLowerCase();
}

/**
 * The annotations as one canonical JSON text: keys written in sorted order (also inside JSON
 * values), so the order they were sent in does not matter, and different annotations never give
 * the same text. (`fromEntries` makes a key such as `__proto__` an ordinary one.)
 */
export function canonicalAnnotations(annotations: Annotations): string {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (value === null || typeof value !== 'object') return value;
    const record = value as Record<string, unknown>;
    return Object.fromEntries(Object.keys(record).sort().map((key) => [key, canonical(record[key])]));
  };
  return JSON.stringify(canonical(annotations));
}

/**
 * The report's identity, or undefined when it has none worth trusting: without a report UUID and
 * without dumps, two different crashes of one install could look the same.
 * `annotations`: as sent (with the URL query); `checksums`: each dump's SHA-256 by name (the raw
 * crash's `dump_checksums`).
 */
export function reportIdentity(annotations: Annotations, dumps: readonly Dump[], checksums: Readonly<Record<string, string>>): ReportIdentity | undefined {
  const content = digest(...Object.keys(checksums).sort().flatMap((name) => [name, checksums[name]!]));
  const reportUuid = reportUuidOf(dumps);
  if (reportUuid) return { identity: digest('crashpad-report', reportUuid, annotationText(annotations, 'guid') ?? ''), content, reportUuid };
  if (dumps.length === 0) return undefined;
  return { identity: digest('report', content, canonicalAnnotations(annotations)), content };
}
