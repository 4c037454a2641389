import { crashIdDate } from '../crash-id.js';
import { MAIN_DUMP_FIELD } from '../dump-names.js';

/**
 * The Socorro/Antenna key layout. Keys depend only on the crash ID and the dump name, so
 * re-uploading a crash after a kill overwrites the same objects with the same bytes (I3).
 * A deployment's key prefix is the storage backend's business, not part of the layout.
 */

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
