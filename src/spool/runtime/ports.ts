/**
 * What each user of the spool writer sees of it: the HTTP side appends, the drain stage removes,
 * marks stored and records failures, health probes. SpoolWriter is all three; tests give each user a small fake.
 */
import type { Crash } from '../../crash.js';
import type { CrashRef, FailureRecord } from '../crash-rows.js';
import type { DedupKey } from './store.js';

export interface CrashAppender {
  /**
   * Resolves once the crash is committed (I1), or with the earlier crash ID when `dedup` finds the
   * report was stored before (nothing is stored then); rejects with SpoolFull or the SQLite error.
   */
  append(crash: Crash, dedup?: DedupKey): Promise<{ duplicateOf?: string }>;
}

export interface DrainedCrashes {
  /** I2: only once storage confirmed every object (and the queue the crash ID, when publishing). False when the crash had left the spool (I7). */
  remove(crash: CrashRef & { bytes: number }): Promise<boolean>;
  /** Storage confirmed every object; the crash ID now waits for the queue. False when the crash had left the spool (I7). */
  markStored(crash: CrashRef & { bytes: number; rawCrashBytes: number }): Promise<boolean>;
  /** False when the crash had left the spool, or is no longer in the state the failure is of (I7). */
  recordFailure(crash: CrashRef, failure: FailureRecord): Promise<boolean>;
}

export interface SpoolProbe {
  /** A real (tiny) durable write. */
  probe(): Promise<void>;
  /** The last append failure that still holds (the spool full, the disk full), if any. */
  readonly currentFailure: { at: number; error: Error } | undefined;
}
