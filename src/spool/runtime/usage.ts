/**
 * How many bytes the spool holds, against SPOOL_MAX_BYTES and the free-space reserve (I4): a crash
 * that would break either is refused (SpoolFull, answered 503) before anything of it is written.
 */
import { statfsSync } from 'node:fs';

/** Thrown by `append` when taking the crash would break a spool limit; answered with 503. */
export class SpoolFull extends Error {
  constructor(
    message: string,
    /** `SPOOL_FULL` (SPOOL_MAX_BYTES) or `SQLITE_FULL` (the free-space reserve): as SQLite's own. */
    readonly code: 'SPOOL_FULL' | 'SQLITE_FULL',
    /** Size of the crash that did not fit. */
    readonly bytes = 0,
  ) {
    super(message);
  }
}

export interface SpoolLimits {
  dir: string;
  maxBytes: number;
  minFreeBytes: number;
}

/** How old a free-space measurement may be when a crash is admitted, far from the reserve… */
const FREE_SPACE_SAMPLE_MS = 50;
/** …which is closer than this (beyond the crash and the reserve). */
const FREE_SPACE_MARGIN_BYTES = 64 * 1024 * 1024;

/**
 * The bytes of all spooled crashes (and of those being committed), shared by the writer, which
 * adds, and the drainer, which subtracts; read from the spool once at start. Also keeps the
 * free-space reserve: SQLite must never fill the disk itself, because deleting uploaded crashes
 * and checkpointing the WAL both need some free space — a spool that filled its disk to the last
 * byte could not free anything.
 */
export class SpoolUsage {
  /** Bytes admitted whose commit has not been confirmed yet. */
  private uncommitted = 0;
  /** Bytes of crashes whose delete has been sent but not confirmed yet. */
  private removing = 0;
  /** The last free-space measurement (statfs and free pages), and crash bytes admitted since. */
  private freeSample = { at: Number.NEGATIVE_INFINITY, bytes: 0 };
  private admittedSinceSample = 0;

  constructor(
    public bytes: number,
    readonly limits: SpoolLimits,
  ) {}

  /** The append of `bytes` ended: committed, or failed (then they no longer count). */
  appendSettled(bytes: number, committed: boolean): void {
    this.uncommitted -= bytes;
    if (!committed) this.bytes -= bytes;
  }

  removeStarted(bytes: number): void {
    this.removing += bytes;
  }

  /** The delete of `bytes` ended; `removed`: it committed. */
  removeSettled(bytes: number, removed: boolean): void {
    this.removing -= bytes;
    if (removed) this.bytes -= bytes;
  }

  /**
   * Re-reads the count from what the spool holds (`storedBytes`, read by the caller), so space
   * freed by another process — `spool-inspect purge` — reopens acceptance without a restart.
   * Appends and deletes still in flight may or may not be in `storedBytes`; both are counted as
   * present, so the count errs high (refusing a little early) until the next resync, never low.
   */
  resync(storedBytes: number): void {
    this.bytes = storedBytes + this.uncommitted + this.removing;
  }

  /**
   * Counts `bytes` in, or throws SpoolFull. `reusableBytes`: free pages inside the database file,
   * which new crashes fill before the file grows (deleting crashes frees pages, not disk space).
   */
  admit(bytes: number, reusableBytes: () => number): void {
    if (this.bytes + bytes > this.limits.maxBytes) {
      throw new SpoolFull(`spool holds ${this.bytes} bytes; SPOOL_MAX_BYTES is ${this.limits.maxBytes}`, 'SPOOL_FULL', bytes);
    }
    if (this.limits.minFreeBytes > 0) {
      const free = this.freeBytes(reusableBytes, bytes);
      if (free - bytes < this.limits.minFreeBytes) {
        throw new SpoolFull(`${free} bytes free on the spool file system; SPOOL_MIN_FREE_BYTES is ${this.limits.minFreeBytes}`, 'SQLITE_FULL');
      }
      this.admittedSinceSample += bytes;
    }
    this.bytes += bytes;
    this.uncommitted += bytes;
  }

  /**
   * Free space for crashes. A statfs and a query per crash cost more than the rest of its
   * admission, so far from the reserve a measurement up to FREE_SPACE_SAMPLE_MS old is used, less
   * twice what was admitted since (a crash is written to the WAL, then copied into the database).
   * Near the reserve every crash measures again, so a refusal always rests on a fresh measurement.
   */
  private freeBytes(reusableBytes: () => number, bytes: number): number {
    const now = performance.now();
    const estimate = this.freeSample.bytes - 2 * this.admittedSinceSample;
    const near = estimate - bytes - this.limits.minFreeBytes < FREE_SPACE_MARGIN_BYTES;
    if (near || now - this.freeSample.at >= FREE_SPACE_SAMPLE_MS) {
      const fs = statfsSync(this.limits.dir);
      this.freeSample = { at: now, bytes: fs.bavail * fs.bsize + reusableBytes() };
      this.admittedSinceSample = 0;
      return this.freeSample.bytes;
    }
    return estimate;
  }
}
