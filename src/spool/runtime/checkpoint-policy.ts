/**
 * When the collector's WAL is checkpointed (copied into the database file): after a number of
 * committed bytes while uploads keep up, sooner while they do not, when the spool goes quiet, and
 * all the time while free disk is short. The writer (writer.ts) counts what it commits; the
 * checkpointer thread (checkpointer-thread.ts) does the copying.
 */

/** How often the checkpointer thread looks at the free space (checkpointing every time while it is short). */
export const CHECKPOINT_INTERVAL_MS = 20;
/** No write for this long: checkpoint what the WAL holds, so a quiet spool rests compact. */
export const QUIET_CHECKPOINT_MS = 1000;
/** What a remove is counted as in the WAL (a few b-tree pages and the freelist). */
export const REMOVE_WAL_BYTES = 16 * 1024;
/**
 * Crash bytes after which the WAL is checkpointed while uploads do not keep up (less than half as
 * many bytes removed as appended since the last checkpoint, e.g. storage is down). A longer window
 * saves writes only by copying pages that were freed and reused within it once; without removes
 * nothing is reused, and a large checkpoint's fsync holds up the commits behind it (~200 KB
 * reports at 160/s, storage down: ack p99 249 ms with 64 MiB windows, 49 ms with 8 MiB; kept
 * gzipped at 273/s: 8 MiB windows left 25–86 of 4,506 acks over 100 ms in the handler, 2 MiB none).
 */
const NOT_REUSING_CHECKPOINT_BYTES = 2 * 1024 * 1024;

export interface CheckpointPolicy {
  /** Bytes committed (crashes, and removes at REMOVE_WAL_BYTES) after which the WAL is checkpointed. */
  everyBytes: number;
  /** Free space on the spool file system below which the WAL is checkpointed every few milliseconds. */
  eagerBelowFreeBytes: number;
}

/** What was committed since the last checkpoint. */
export interface CheckpointWindow {
  /** As the policy counts it: crash bytes as stored, and REMOVE_WAL_BYTES per remove. */
  walBytes: number;
  /** Sizes of the crashes appended and removed (as uploaded): whether freed pages are being reused. */
  appendedBytes: number;
  removedBytes: number;
}

/** Whether the WAL should be checkpointed now: `everyBytes` while uploads keep up, else every 2 MiB. */
export function checkpointDue(window: CheckpointWindow, everyBytes: number): boolean {
  if (window.walBytes >= everyBytes) return true;
  const reusing = 2 * window.removedBytes >= window.appendedBytes;
  return !reusing && window.walBytes >= Math.min(NOT_REUSING_CHECKPOINT_BYTES, everyBytes);
}
