/**
 * What an operator can do to a spool (`scripts/spool-inspect requeue` and `purge`), each change in
 * short transactions of its own, safe next to a running collector (inspection.ts).
 *
 * I6 nothing silent: `purge*` reports every crash it deleted to its `onPurged` callback after the
 * deleting transaction committed; the caller must log it.
 *
 * A running collector keeps its own count of spooled bytes (SPOOL_MAX_BYTES admission): bytes
 * purged here leave that count when it next re-reads it from the spool (every 2 s while the spool
 * is above half its limit, where the count matters), and crashes requeued here are picked up when
 * its drainer next looks for work (within 30 s).
 *
 * Purging a crash whose upload is in flight is allowed: the purge deletes only that crash (I7),
 * and the upload, which has read the crash already, may still store it whole; its remove then
 * finds nothing to delete and touches no other crash.
 */
import type Database from 'better-sqlite3';
import type { CrashRow, CrashState } from '../schema.js';
import { CrashRows } from '../crash-rows.js';
import { CrashNotFound, type InspectedSpool } from './inspection.js';

export interface RequeueResult {
  /** Crash IDs moved from dead to pending. */
  requeued: string[];
  /** Crash IDs asked for by ID that were pending already (left as they were). */
  alreadyPending: string[];
  /** Crash IDs asked for by ID that are stored (in storage, waiting for the queue): nothing to requeue. */
  stored?: string[];
}

/**
 * A dead crash goes back to what it died of: pending (to upload) or, if storage had it already
 * (`stored_at`), stored (to announce, its dumps being gone from the spool).
 */
const REQUEUED_STATE = `CASE WHEN stored_at IS NULL THEN 'pending' ELSE 'stored' END`;

/**
 * Moves one dead crash back to pending (or stored: see REQUEUED_STATE): attempts 0, due now, last
 * error kept. A crash that is pending already is left alone. Throws CrashNotFound.
 */
export function requeueCrash(spool: InspectedSpool, crashId: string): RequeueResult {
  const { db } = spool;
  return db
    .transaction(() => {
      const row = db.prepare('SELECT state FROM crashes WHERE crash_id = ?').get(crashId) as { state: CrashState } | undefined;
      if (!row) throw new CrashNotFound(crashId);
      if (row.state === 'stored') return { requeued: [], alreadyPending: [], stored: [crashId] };
      if (row.state !== 'dead') return { requeued: [], alreadyPending: [crashId] };
      db.prepare(`UPDATE crashes SET state = ${REQUEUED_STATE}, attempts = 0, next_attempt_at = 0 WHERE crash_id = ?`).run(crashId);
      return { requeued: [crashId], alreadyPending: [] };
    })
    .immediate();
}

/** Every dead crash back to pending, `batchSize` per (short) write transaction. */
export function requeueAllDead(spool: InspectedSpool, batchSize = 500): RequeueResult {
  const { db } = spool;
  const batch = db.prepare(
    `UPDATE crashes SET state = ${REQUEUED_STATE}, attempts = 0, next_attempt_at = 0
     WHERE seq IN (SELECT seq FROM crashes WHERE state = 'dead' ORDER BY seq LIMIT ?) RETURNING crash_id`,
  );
  const requeued: string[] = [];
  for (;;) {
    const rows = db.transaction(() => batch.all(batchSize) as { crash_id: string }[]).immediate();
    requeued.push(...rows.map((row) => row.crash_id));
    if (rows.length < batchSize) break;
  }
  return { requeued, alreadyPending: [] };
}

export interface PurgedCrash {
  crashId: string;
  state: CrashState;
  /** In storage, its ID never announced (stored, or dead after storage took it). */
  unannounced: boolean;
  bytes: number;
  attempts: number;
  receivedAt: number;
  lastError: string | null;
}

/** What a purge would delete, without deleting: for the confirmation message. */
export function purgeCandidates(spool: InspectedSpool, target: { crashId: string } | { allDead: true }): PurgedCrash[] {
  const sql = `SELECT crash_id, state, bytes, attempts, received_at, last_error, stored_at FROM crashes WHERE ${'crashId' in target ? 'crash_id = ?' : `state = 'dead'`} ORDER BY seq`;
  const rows = spool.db.prepare(sql).all(...('crashId' in target ? [target.crashId] : [])) as CrashRow[];
  if ('crashId' in target && rows.length === 0) throw new CrashNotFound(target.crashId);
  return rows.map(toPurged);
}

function toPurged(row: Pick<CrashRow, 'crash_id' | 'state' | 'bytes' | 'attempts' | 'received_at' | 'last_error' | 'stored_at'>): PurgedCrash {
  return {
    crashId: row.crash_id,
    state: row.state,
    unannounced: row.stored_at != null,
    bytes: row.bytes,
    attempts: row.attempts,
    receivedAt: row.received_at,
    lastError: row.last_error,
  };
}

/** Which crashes a purge may delete. */
export interface PurgeScope {
  /** Only dead-letter crashes (one requeued meanwhile is skipped). */
  onlyDead: boolean;
  /** Also crashes in storage whose IDs were never announced; without it they are skipped. */
  unannounced: boolean;
}

/** A purge by ID skipped the crash: it is in storage and was never announced (see PurgeScope). */
export class PurgeWouldLoseAnnouncement extends Error {
  constructor(readonly crashId: string) {
    super(`crash ${crashId} is in storage and was never announced on the processing queue; purged, Socorro would never process it`);
  }
}

/**
 * Deletes the crash, its dumps and body in one transaction (the spool's one delete, CrashRows).
 * `onPurged` runs after the commit, once per deleted crash (I6: the caller logs it). Returns
 * undefined when the crash is gone already, 'outside' when `scope` leaves it out (decided in the
 * same transaction: a crash stored meanwhile is not purged unannounced by accident).
 */
function purgeOne(db: Database.Database, crashId: string, scope: PurgeScope): PurgedCrash | 'outside' | undefined {
  return db
    .transaction(() => {
      const row = db
        .prepare('SELECT seq, crash_id, state, bytes, attempts, received_at, last_error, stored_at FROM crashes WHERE crash_id = ?')
        .get(crashId) as CrashRow | undefined;
      if (!row) return undefined;
      if ((scope.onlyDead && row.state !== 'dead') || (!scope.unannounced && row.stored_at != null)) return 'outside';
      new CrashRows(db).delete({ seq: row.seq, crashId: row.crash_id });
      return toPurged(row);
    })
    .immediate();
}

/** Deletes one crash (any state, an unannounced one only with `unannounced`). Throws CrashNotFound, PurgeWouldLoseAnnouncement. */
export function purgeCrash(spool: InspectedSpool, crashId: string, unannounced: boolean, onPurged: (crash: PurgedCrash) => void): PurgedCrash[] {
  const purged = purgeOne(spool.db, crashId, { onlyDead: false, unannounced });
  if (!purged) throw new CrashNotFound(crashId);
  if (purged === 'outside') throw new PurgeWouldLoseAnnouncement(crashId);
  onPurged(purged);
  return [purged];
}

/**
 * Deletes every dead crash (those in storage and never announced only with `unannounced`), one
 * crash per transaction so the collector's writer never waits long. A crash requeued meanwhile
 * (no longer dead) is skipped.
 */
export function purgeAllDead(spool: InspectedSpool, unannounced: boolean, onPurged: (crash: PurgedCrash) => void): PurgedCrash[] {
  const ids = (spool.db.prepare(`SELECT crash_id FROM crashes WHERE state = 'dead' ORDER BY seq`).all() as { crash_id: string }[]).map(
    (row) => row.crash_id,
  );
  const purged: PurgedCrash[] = [];
  for (const crashId of ids) {
    const crash = purgeOne(spool.db, crashId, { onlyDead: true, unannounced });
    if (!crash || crash === 'outside') continue;
    onPurged(crash);
    purged.push(crash);
  }
  return purged;
}
