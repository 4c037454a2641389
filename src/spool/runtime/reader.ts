/**
 * The drainer's view of the spool: due crashes oldest first, their dumps, counts. Reads never wait
 * for the writer (WAL). A crash's dumps are read with the check that it is still there (I7).
 */
import type Database from 'better-sqlite3';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { Dump } from '../../crash.js';
import type { CrashRef } from '../crash-rows.js';
import { toSpooled, type CrashRow, type SpooledCrash } from '../schema.js';
import { dumpsOf, StoredDumps } from '../stored-dumps.js';

const gunzipInPool = promisify(gunzip);

export interface SpoolStats {
  pending: number;
  /** Stored, their IDs waiting for the processing queue. */
  stored: number;
  dead: number;
  bytes: number;
  /** Receive time (ms) of the oldest pending crash; null when none is pending. */
  oldestPendingAt: number | null;
  /** Receive time (ms) of the oldest dead-letter crash, or null. */
  oldestDeadAt: number | null;
  /** When the longest-waiting stored crash was stored (ms), or null. */
  oldestStoredAt: number | null;
}

/** A stored crash waiting for the processing queue. */
export interface StoredCrash {
  seq: number;
  crashId: string;
  bytes: number;
  storedAt: number;
  /** Announcements the queue refused as this crash's fault, so far. */
  attempts: number;
}

/**
 * Pending crashes due now, oldest first. The `+` keeps SQLite off the `crashes_by_due` index, which
 * would make it collect and sort every pending crash on each call (5 ms at 100k pending, called
 * after every upload); walking `crashes_by_state` in seq order stops after LIMIT rows.
 */
export const DUE_SQL = `SELECT * FROM crashes WHERE state = 'pending' AND +next_attempt_at <= ? ORDER BY seq LIMIT ?`;

/** Reads spooled crashes: the drainer's view. Reads never wait for the writer (WAL). */
export class SpoolReader {
  private readonly dueStatement: Database.Statement;
  private readonly dumpRows: StoredDumps;
  private readonly freePagesStatement: Database.Statement;
  private readonly oldestDueStatement: Database.Statement;
  private readonly pageSize: number;
  private readonly storedStatement: Database.Statement;
  private readonly nextStoredDueStatement: Database.Statement;
  private readonly statsStatement: Database.Statement;

  constructor(readonly db: Database.Database) {
    // Called for every crash received (the free-space reserve): prepared once.
    this.freePagesStatement = db.prepare('PRAGMA freelist_count').pluck();
    this.oldestDueStatement = db.prepare(
      `SELECT received_at FROM crashes WHERE state = 'pending' AND +next_attempt_at <= ? ORDER BY seq LIMIT 1`,
    ).pluck();
    this.pageSize = db.pragma('page_size', { simple: true }) as number;
    this.dueStatement = db.prepare(DUE_SQL);
    // As DUE_SQL: the `+` keeps SQLite walking crashes_by_state in seq order.
    this.storedStatement = db.prepare(
      `SELECT seq, crash_id, bytes, stored_at, attempts FROM crashes WHERE state = 'stored' AND +next_attempt_at <= ? ORDER BY seq LIMIT ?`,
    );
    this.nextStoredDueStatement = db.prepare(`SELECT MIN(next_attempt_at) FROM crashes WHERE state = 'stored'`).pluck();
    this.statsStatement = db.prepare(
      `SELECT COALESCE(SUM(state = 'pending'), 0) AS pending, COALESCE(SUM(state = 'stored'), 0) AS stored,
              COALESCE(SUM(state = 'dead'), 0) AS dead, COALESCE(SUM(bytes), 0) AS bytes,
              MIN(CASE WHEN state = 'pending' THEN received_at END) AS oldest,
              MIN(CASE WHEN state = 'dead' THEN received_at END) AS oldest_dead,
              MIN(CASE WHEN state = 'stored' THEN stored_at END) AS oldest_stored
       FROM crashes`,
    );
    this.dumpRows = new StoredDumps(db);
  }

  /**
   * Up to `limit` pending crashes due by `now`, oldest first, skipping those in `exclude` (being
   * uploaded). Reads only the rows it returns, so it costs the same with 10 or 100k crashes spooled.
   */
  due(now: number, limit: number, exclude: ReadonlySet<number>): SpooledCrash[] {
    const rows = this.dueStatement.all(now, limit + exclude.size) as CrashRow[];
    return rows.filter((row) => !exclude.has(row.seq)).slice(0, limit).map(toSpooled);
  }

  /**
   * Receive time (ms) of the oldest crash due by `now` (waiting only for the drainer, not for a
   * retry delay), or undefined when none is.
   */
  oldestDueAt(now: number): number | undefined {
    return this.oldestDueStatement.get(now) as number | undefined;
  }

  /** The earliest time a pending crash becomes due, or undefined when none is pending. */
  nextDueAt(): number | undefined {
    const row = this.db
      .prepare(`SELECT MIN(next_attempt_at) AS at FROM crashes WHERE state = 'pending'`)
      .get() as { at: number | null };
    return row.at ?? undefined;
  }

  /**
   * The crash's dumps as uploaded (a body kept as sent is inflated off the event loop), or
   * undefined when the crash has left the spool (an operator's purge): nothing of it is uploaded then.
   */
  async dumps(crash: CrashRef): Promise<Dump[] | undefined> {
    const stored = this.dumpRows.read(crash);
    if (!stored) return undefined;
    return dumpsOf(stored.rows, stored.sentGzip && (await gunzipInPool(stored.sentGzip)));
  }

  /** Free pages inside the database file: space new crashes fill before the file grows. */
  reusableBytes(): number {
    return (this.freePagesStatement.get() as number) * this.pageSize;
  }

  /**
   * Up to `limit` stored crashes due by `now` (not waiting out a retry delay written on them), the
   * longest waiting first, skipping those in `exclude` (being published, or waiting in memory).
   * Reads only the rows it returns.
   */
  stored(now: number, limit: number, exclude: ReadonlySet<number>): StoredCrash[] {
    const rows = this.storedStatement.all(now, limit + exclude.size) as { seq: number; crash_id: string; bytes: number; stored_at: number | null; attempts: number }[];
    return rows
      .filter((row) => !exclude.has(row.seq))
      .slice(0, limit)
      .map((row) => ({ seq: row.seq, crashId: row.crash_id, bytes: row.bytes, storedAt: row.stored_at ?? 0, attempts: row.attempts }));
  }

  /** The earliest time a stored crash is due to be announced, or undefined when none is stored. */
  nextStoredDueAt(): number | undefined {
    return (this.nextStoredDueStatement.get() as number | null) ?? undefined;
  }

  /** Counts over the whole spool: one pass over the crash rows (not the dumps). */
  stats(): SpoolStats {
    const row = this.statsStatement.get() as {
      pending: number;
      stored: number;
      dead: number;
      bytes: number;
      oldest: number | null;
      oldest_dead: number | null;
      oldest_stored: number | null;
    };
    return {
      pending: row.pending,
      stored: row.stored,
      dead: row.dead,
      bytes: row.bytes,
      oldestPendingAt: row.oldest,
      oldestDeadAt: row.oldest_dead,
      oldestStoredAt: row.oldest_stored,
    };
  }
}
