import { crashIdDate } from '../crash-id.js';

/**
 * The Socorro/Antenna key layout. Keys depend only on the crash ID and the dump name, so
 * re-uploading a crash after a kill overwrites the same objects with the same bytes (I3).
 * A deployment's key prefix is the storage backend's business, not part of the layout.
 */

export const MAIN_DUMP_FIELD = 'upload_file_minidump';
const RESERVED_DUMP_NAMES = new Set(['raw_crash', 'dump_names', 'processed_crash']);

/** Antenna's rule: keep `[A-Za-z0-9_]`, at most 30 characters. Returns undefined when unusable. */
export function sanitizeDumpName(name: string): string | undefined {
  const clean = name.replace(/[^A-Za-z0-9_]/g, '').slice(0, 30);
  if (clean === '' || RESERVED_DUMP_NAMES.has(clean)) return undefined;
  return clean;
}

export function dumpNamesKey(crashId: string): string {
  return `v1/dump_names/${crashId}`;
}

export function dumpKey(crashId: string, dumpName: string): string {
  const folder = dumpName === MAIN_DUMP_FIELD ? 'dump' : dumpName;
  return `v1/${folder}/${crashId}`;
}

export function rawCrashKey(crashId: string): string {
  return `v1/raw_crash/${crashIdDate(crashId)}/${crashId}`;
}
