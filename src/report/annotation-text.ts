/**
 * Client text made safe for every reader of the raw crash: no NUL characters (Antenna removes them
 * too; PostgreSQL text cannot hold them) and no lone surrogates (JSON.stringify writes them as
 * `\ud800` escapes, which strict JSON readers refuse). Bytes that were not UTF-8 arrive here
 * already decoded to U+FFFD.
 */
import type { Annotations } from '../crash.js';

/** What cleaning found, for the raw crash's notes. */
export interface TextFindings {
  nul: boolean;
  loneSurrogate: boolean;
  notUtf8: boolean;
}

export const noFindings = (): TextFindings => ({ nul: false, loneSurrogate: false, notUtf8: false });

export function cleanText(text: string, findings: TextFindings): string {
  if (text.includes('\u0000')) {
    findings.nul = true;
    text = text.replaceAll('\u0000', '');
  }
  if (!text.isWellFormed()) {
    findings.loneSurrogate = true;
    text = text.toWellFormed();
  }
  if (text.includes('\ufffd')) findings.notUtf8 = true;
  return text;
}

/**
 * Cleans every string and key of a parsed JSON value. Objects come back without a prototype, so
 * keys such as `__proto__` stay ordinary keys.
 */
export function cleanJson(value: unknown, findings: TextFindings): unknown {
  if (typeof value === 'string') return cleanText(value, findings);
  if (Array.isArray(value)) return value.map((item) => cleanJson(item, findings));
  if (value === null || typeof value !== 'object') return value;
  const clean: Record<string, unknown> = Object.create(null);
  for (const [key, child] of Object.entries(value)) clean[cleanText(key, findings)] = cleanJson(child, findings);
  return clean;
}

/** A client-supplied name as it appears in a note: bounded, quoted. */
export const quoted = (name: string) => JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);

export function findingNotes(findings: TextFindings, where: string): string[] {
  const notes: string[] = [];
  if (findings.nul) notes.push(`removed NUL characters from ${where}`);
  if (findings.loneSurrogate) notes.push(`replaced lone surrogates in ${where} with U+FFFD`);
  if (findings.notUtf8) notes.push(`${where} held bytes that are not UTF-8, stored as U+FFFD`);
  return notes;
}

/**
 * An annotation as text (what throttle rules and report identities compare), or undefined when absent. JSON `extra` values may be
 * other types; like Antenna's `str()`, they are compared as text.
 */
export function annotationText(annotations: Annotations, key: string): string | undefined {
  if (!Object.hasOwn(annotations, key)) return undefined;
  const value = annotations[key];
  if (typeof value === 'string') return value;
  if (value === null) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
