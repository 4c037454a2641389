/**
 * What an operator can see and do on a spool, on its own connection: the functions behind
 * `scripts/spool-inspect`, free of argument parsing and output formatting.
 *
 * Safe next to a running collector:
 * - Reads use a read-only connection (`openSpoolForInspection(dir, 'read')`). In WAL mode a
 *   reader never blocks the collector's writer and sees one committed snapshot per transaction;
 *   each read here is one short transaction, so the WAL can still be checkpointed.
 * - Writes (requeue, purge) take the write lock with `BEGIN IMMEDIATE` under `busy_timeout`, and
 *   hold it for one crash (purge) or one small batch (requeue) at a time, so ingest waits at most
 *   a few milliseconds and never gets SQLITE_BUSY from us.
 * - Nothing here creates a spool: a missing directory or file is a `SpoolUnusable` error.
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
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  checkIntegrity,
  crashListing,
  SCHEMA_VERSION,
  SPOOL_FILE,
  StoredDumps,
  upgradeSchema,
  type CrashRow,
  type CrashState,
  type SpooledCrash,
} from '../spool/spool.js';
import { CrashRows } from '../spool/crash-rows.js';

/** The spool cannot be used: missing, damaged, busy, or of another schema version. */
export class SpoolUnusable extends Error {}

/** The crash ID names no crash in this spool. */
export class CrashNotFound extends Error {
  constructor(readonly crashId: string) {
    super(`no crash ${crashId} in the spool`);
  }
}

/** How long a statement waits for a lock held by the collector before failing as busy. */
export const BUSY_TIMEOUT_MS = 5000;

export interface InspectedSpool {
  db: Database.Database;
  dir: string;
  file: string;
  mode: 'read' | 'write';
  /**
   * True when a read-only connection could not be opened (WAL files not accessible read-only)
   * and a read-write one with `query_only` is used instead: no SQL writes, but closing it may
   * checkpoint the WAL into the main file, as any last connection does.
   */
  fallback: boolean;
}

interface SqliteFailure {
  code?: string;
  message: string;
}

/** One line saying what is wrong with the spool, from a better-sqlite3 (or fs) error. */
export function describeSpoolError(error: unknown, file: string, mode: 'read' | 'write' = 'read'): SpoolUnusable {
  if (error instanceof SpoolUnusable) return error;
  const { code = '', message } = error as SqliteFailure;
  if (code === 'SQLITE_NOTADB') {
    return new SpoolUnusable(`cannot read spool ${file}: file is not a database (damaged, or not a crashspool spool)`);
  }
  if (code.startsWith('SQLITE_CORRUPT')) return new SpoolUnusable(`spool ${file} is corrupt: ${message}`);
  if (code.startsWith('SQLITE_BUSY')) {
    return new SpoolUnusable(`spool ${file} stayed locked for more than ${BUSY_TIMEOUT_MS / 1000} s (${message}); try again`);
  }
  if ((code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY')) && mode === 'write') {
    return new SpoolUnusable(`cannot write spool ${file}: ${message}. requeue and purge need write access to the spool directory and its files`);
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY')) {
    return new SpoolUnusable(
      `cannot open spool ${file}: ${message}. A spool in WAL mode needs write access to its directory ` +
        '(for the -shm file) even to be read; copy the spool directory somewhere writable and inspect the copy',
    );
  }
  return new SpoolUnusable(`cannot read spool ${file}: ${message}${code ? ` (${code})` : ''}`);
}

function connect(file: string, readonly: boolean): Database.Database {
  const db = new Database(file, { readonly, fileMustExist: true });
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    if (readonly) db.pragma('query_only = ON');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === 0) {
      throw new SpoolUnusable(`${file} is not a crashspool spool (an empty or foreign SQLite database: schema version 0)`);
    }
    if (version < 1 || version > SCHEMA_VERSION) {
      throw new SpoolUnusable(
        `spool ${file} has schema version ${version}; this spool-inspect reads versions 1 to ${SCHEMA_VERSION}. ` +
          'Use the spool-inspect of the collector version that wrote it',
      );
    }
    // An earlier version is read as it is, and upgraded in place before any change.
    if (version < SCHEMA_VERSION && !readonly) upgradeSchema(db);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * Opens an existing spool for inspection (`read`: read-only connection) or administration
 * (`write`). Never creates the directory or the database.
 */
export function openSpoolForInspection(dir: string, mode: 'read' | 'write'): InspectedSpool {
  const file = join(dir, SPOOL_FILE);
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch {
    throw new SpoolUnusable(`no spool directory ${dir}`);
  }
  if (!isDirectory) throw new SpoolUnusable(`${dir} is not a directory (--spool takes the collector's SPOOL_DIR)`);
  if (!existsSync(file)) throw new SpoolUnusable(`no spool at ${file} (is ${dir} the collector's SPOOL_DIR?)`);

  if (mode === 'write') {
    try {
      const db = connect(file, false);
      db.pragma('synchronous = FULL');
      return { db, dir, file, mode, fallback: false };
    } catch (error) {
      throw describeSpoolError(error, file, 'write');
    }
  }
  try {
    return { db: connect(file, true), dir, file, mode, fallback: false };
  } catch (error) {
    const code = (error as SqliteFailure).code ?? '';
    if (!code.startsWith('SQLITE_CANTOPEN') && !code.startsWith('SQLITE_READONLY')) throw describeSpoolError(error, file);
  }
  // A read-only connection cannot always set up the WAL index; a normal one that never writes can.
  try {
    const db = connect(file, false);
    db.pragma('query_only = ON');
    return { db, dir, file, mode, fallback: true };
  } catch (error) {
    throw describeSpoolError(error, file);
  }
}

// ---- reading --------------------------------------------------------------------------------

export interface AttemptsBucket {
  attempts: number;
  pending: number;
  dead: number;
}

/** Merges per-(attempts, state) counts into one row per attempts value, ascending. Pure. */
export function attemptsHistogram(counts: readonly { attempts: number; state: CrashState; crashes: number }[]): AttemptsBucket[] {
  const buckets = new Map<number, AttemptsBucket>();
  for (const { attempts, state, crashes } of counts) {
    const bucket = buckets.get(attempts) ?? { attempts, pending: 0, dead: 0 };
    bucket[state] += crashes;
    buckets.set(attempts, bucket);
  }
  return [...buckets.values()].sort((a, b) => a.attempts - b.attempts);
}

export interface ErrorGroup {
  /** The error with crash IDs (and raw crash key dates) replaced by placeholders; see `errorKind`. */
  error: string;
  crashes: number;
  pending: number;
  dead: number;
  /** Receive time (ms) and ID of the newest crash with this error. */
  latestReceivedAt: number;
  latestCrashId: string;
}

/**
 * What an error message says without the crash it concerns: storage errors name the object key,
 * which holds the crash ID (and for the raw crash a date), so without this every crash would be a
 * distinct error. Pure.
 */
export function errorKind(message: string): string {
  return message
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<crash_id>')
    .replace(/raw_crash\/\d{8}\//g, 'raw_crash/<date>/');
}

/** Merges per-(message, state) counts into groups by `errorKind`, most crashes first, then newest. Pure. */
export function groupErrors(
  counts: readonly { error: string; state: CrashState; crashes: number; latestReceivedAt: number; latestCrashId: string }[],
): ErrorGroup[] {
  const groups = new Map<string, ErrorGroup>();
  for (const count of counts) {
    const kind = errorKind(count.error);
    const group = groups.get(kind) ?? { error: kind, crashes: 0, pending: 0, dead: 0, latestReceivedAt: -Infinity, latestCrashId: '' };
    group.crashes += count.crashes;
    group[count.state] += count.crashes;
    if (count.latestReceivedAt > group.latestReceivedAt) {
      group.latestReceivedAt = count.latestReceivedAt;
      group.latestCrashId = count.latestCrashId;
    }
    groups.set(kind, group);
  }
  return [...groups.values()].sort((a, b) => b.crashes - a.crashes || b.latestReceivedAt - a.latestReceivedAt);
}

export interface SpoolSummary {
  pending: number;
  dead: number;
  bytes: number;
  /** Receive times (ms) over all crashes, and of the oldest pending one; null when none. */
  oldestReceivedAt: number | null;
  newestReceivedAt: number | null;
  oldestPendingAt: number | null;
  attempts: AttemptsBucket[];
  /** Distinct last errors (by `errorKind`), most frequent first. */
  errors: ErrorGroup[];
  /** Size of the main database file, of its WAL (0 when absent), and of its free pages. */
  databaseBytes: number;
  walBytes: number;
  freeBytes: number;
  /** Entries of the dedup index (reports a retry is recognised by), and when the oldest was made. */
  dedupEntries: number;
  dedupOldestAt: number | null;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Counts, ages, histogram and errors from one snapshot (one read transaction over the crash rows, not the dumps). */
export function spoolSummary(spool: InspectedSpool): SpoolSummary {
  const { db } = spool;
  const read = db.transaction(() => {
    const totals = db
      .prepare(
        `SELECT COALESCE(SUM(state = 'pending'), 0) AS pending, COALESCE(SUM(state = 'dead'), 0) AS dead,
                COALESCE(SUM(bytes), 0) AS bytes, MIN(received_at) AS oldest, MAX(received_at) AS newest,
                MIN(CASE WHEN state = 'pending' THEN received_at END) AS oldestPending
         FROM crashes`,
      )
      .get() as { pending: number; dead: number; bytes: number; oldest: number | null; newest: number | null; oldestPending: number | null };
    const attempts = db
      .prepare('SELECT attempts, state, COUNT(*) AS crashes FROM crashes GROUP BY attempts, state')
      .all() as { attempts: number; state: CrashState; crashes: number }[];
    // SQLite returns the bare column crash_id from the row holding MAX(received_at).
    const errors = db
      .prepare(
        `SELECT last_error AS error, state, COUNT(*) AS crashes, MAX(received_at) AS latestReceivedAt, crash_id AS latestCrashId
         FROM crashes WHERE last_error IS NOT NULL GROUP BY last_error, state`,
      )
      .all() as { error: string; state: CrashState; crashes: number; latestReceivedAt: number; latestCrashId: string }[];
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const freePages = db.pragma('freelist_count', { simple: true }) as number;
    // Spools written before the dedup index have no table until a collector opens them.
    const hasDedup = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dedup_log'`).get() !== undefined;
    const dedup = hasDedup
      ? (db.prepare('SELECT COUNT(*) AS entries, MIN(created_at) AS oldest FROM dedup_log').get() as { entries: number; oldest: number | null })
      : { entries: 0, oldest: null };
    return { totals, attempts, errors, freeBytes: pageSize * freePages, dedup };
  });
  const { totals, attempts, errors, freeBytes, dedup } = read();
  return {
    pending: totals.pending,
    dead: totals.dead,
    bytes: totals.bytes,
    oldestReceivedAt: totals.oldest,
    newestReceivedAt: totals.newest,
    oldestPendingAt: totals.oldestPending,
    attempts: attemptsHistogram(attempts),
    errors: groupErrors(errors),
    databaseBytes: fileSize(spool.file),
    walBytes: fileSize(`${spool.file}-wal`),
    freeBytes,
    dedupEntries: dedup.entries,
    dedupOldestAt: dedup.oldest,
  };
}

/** SQLite's `PRAGMA quick_check`: ['ok'] or its findings. Reads every page: seconds on a large spool. */
export function spoolIntegrity(spool: InspectedSpool): string[] {
  return checkIntegrity(spool.db);
}

/** A spooled crash without its raw crash and dump bytes. */
export type CrashListing = Omit<SpooledCrash, 'rawCrashJson'>;

export interface ListOptions {
  state?: CrashState;
  limit?: number;
  /** Only crashes received before this time (ms since the epoch). */
  receivedBefore?: number;
  oldestFirst?: boolean;
}


const LISTING_COLUMNS = 'seq, crash_id, received_at, dump_names, bytes, state, attempts, next_attempt_at, last_error';

/** Crashes in spool order (the order they were received), newest first unless `oldestFirst`. */
export function listCrashes(spool: InspectedSpool, options: ListOptions = {}): CrashListing[] {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (options.state) {
    where.push('state = ?');
    params.push(options.state);
  }
  if (options.receivedBefore !== undefined) {
    where.push('received_at < ?');
    params.push(options.receivedBefore);
  }
  let sql = `SELECT ${LISTING_COLUMNS} FROM crashes`;
  if (where.length > 0) sql += ` WHERE ${where.join(' AND ')}`;
  sql += ` ORDER BY seq ${options.oldestFirst ? 'ASC' : 'DESC'}`;
  if (options.limit !== undefined) {
    sql += ' LIMIT ?';
    params.push(options.limit);
  }
  return (spool.db.prepare(sql).all(...params) as CrashRow[]).map(crashListing);
}

/** `bp-<id>` (as the collector answers) is accepted as well as the bare ID. */
export function normalizeCrashId(raw: string): string {
  const trimmed = raw.trim().toLowerCase();
  return trimmed.startsWith('bp-') ? trimmed.slice(3) : trimmed;
}

export interface DumpInfo {
  name: string;
  bytes: number;
  sha256: string;
}

export interface CrashDetail {
  crash: SpooledCrash;
  dumps: DumpInfo[];
}

function findCrash(db: Database.Database, crashId: string): CrashRow | undefined {
  return db.prepare('SELECT * FROM crashes WHERE crash_id = ?').get(crashId) as CrashRow | undefined;
}

function toSpooled(row: CrashRow): SpooledCrash {
  return { ...crashListing(row), rawCrashJson: row.raw_crash ?? '' };
}

/** The dumps of a crash row read in the caller's transaction (so it is there). */
function readDumps(db: Database.Database, row: CrashRow): { name: string; data: Buffer }[] {
  return new StoredDumps(db).readSync({ seq: row.seq, crashId: row.crash_id }) ?? [];
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** One crash with its dumps' sizes and checksums. Throws CrashNotFound. */
export function showCrash(spool: InspectedSpool, crashId: string): CrashDetail {
  const { db } = spool;
  return db.transaction(() => {
    const row = findCrash(db, crashId);
    if (!row) throw new CrashNotFound(crashId);
    const dumps = readDumps(db, row).map(({ name, data }) => ({ name, bytes: data.length, sha256: sha256(data) }));
    return { crash: toSpooled(row), dumps };
  })();
}

export interface ExportedFile {
  path: string;
  bytes: number;
  sha256: string;
}

/** The file a dump is exported to: dump names are `[A-Za-z0-9_]` only (sanitised at ingest). */
export function dumpFileName(dumpName: string): string {
  return `${dumpName}.dmp`;
}

/**
 * Writes `raw_crash.json` and each dump as `<dump_name>.dmp` into `dir` (created when missing),
 * bytes exactly as spooled, i.e. as they would be uploaded. Never overwrites a file: throws
 * ExportTargetExists naming the first existing one. Throws CrashNotFound.
 */
export function exportCrash(spool: InspectedSpool, crashId: string, dir: string): ExportedFile[] {
  const { db } = spool;
  const { row, dumps } = db.transaction(() => {
    const found = findCrash(db, crashId);
    if (!found) throw new CrashNotFound(crashId);
    return { row: found, dumps: readDumps(db, found) };
  })();
  const files: { path: string; data: Buffer }[] = [
    { path: join(dir, 'raw_crash.json'), data: Buffer.from(row.raw_crash ?? '', 'utf8') },
    ...dumps.map((dump) => ({ path: join(dir, dumpFileName(dump.name)), data: dump.data })),
  ];
  const existing = files.find((file) => existsSync(file.path));
  if (existing) throw new ExportTargetExists(existing.path);
  mkdirSync(dir, { recursive: true });
  for (const file of files) writeFileSync(file.path, file.data, { flag: 'wx' });
  return files.map((file) => ({ path: file.path, bytes: file.data.length, sha256: sha256(file.data) }));
}

/** `export` refuses to overwrite an existing file. */
export class ExportTargetExists extends Error {
  constructor(readonly path: string) {
    super(`${path} exists; export into an empty or new directory`);
  }
}

// ---- administration -------------------------------------------------------------------------

export interface RequeueResult {
  /** Crash IDs moved from dead to pending. */
  requeued: string[];
  /** Crash IDs asked for by ID that were pending already (left as they were). */
  alreadyPending: string[];
}

/**
 * Moves one dead crash back to pending: attempts 0, due now, last error kept. A crash that is
 * pending already is left alone. Throws CrashNotFound.
 */
export function requeueCrash(spool: InspectedSpool, crashId: string): RequeueResult {
  const { db } = spool;
  return db
    .transaction(() => {
      const row = db.prepare('SELECT state FROM crashes WHERE crash_id = ?').get(crashId) as { state: CrashState } | undefined;
      if (!row) throw new CrashNotFound(crashId);
      if (row.state !== 'dead') return { requeued: [], alreadyPending: [crashId] };
      db.prepare(`UPDATE crashes SET state = 'pending', attempts = 0, next_attempt_at = 0 WHERE crash_id = ?`).run(crashId);
      return { requeued: [crashId], alreadyPending: [] };
    })
    .immediate();
}

/** Every dead crash back to pending, `batchSize` per (short) write transaction. */
export function requeueAllDead(spool: InspectedSpool, batchSize = 500): RequeueResult {
  const { db } = spool;
  const batch = db.prepare(
    `UPDATE crashes SET state = 'pending', attempts = 0, next_attempt_at = 0
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
  bytes: number;
  attempts: number;
  receivedAt: number;
  lastError: string | null;
}

/** What a purge would delete, without deleting: for the confirmation message. */
export function purgeCandidates(spool: InspectedSpool, target: { crashId: string } | { allDead: true }): PurgedCrash[] {
  const sql = `SELECT crash_id, state, bytes, attempts, received_at, last_error FROM crashes WHERE ${'crashId' in target ? 'crash_id = ?' : `state = 'dead'`} ORDER BY seq`;
  const rows = spool.db.prepare(sql).all(...('crashId' in target ? [target.crashId] : [])) as CrashRow[];
  if ('crashId' in target && rows.length === 0) throw new CrashNotFound(target.crashId);
  return rows.map(toPurged);
}

function toPurged(row: Pick<CrashRow, 'crash_id' | 'state' | 'bytes' | 'attempts' | 'received_at' | 'last_error'>): PurgedCrash {
  return {
    crashId: row.crash_id,
    state: row.state,
    bytes: row.bytes,
    attempts: row.attempts,
    receivedAt: row.received_at,
    lastError: row.last_error,
  };
}

/**
 * Deletes the crash, its dumps and body in one transaction (the spool's one delete, CrashRows).
 * `onPurged` runs after the commit, once per deleted crash (I6: the caller logs it). Returns
 * undefined when the crash is gone already.
 */
function purgeOne(db: Database.Database, crashId: string, onlyDead: boolean): PurgedCrash | undefined {
  return db
    .transaction(() => {
      const row = db
        .prepare('SELECT seq, crash_id, state, bytes, attempts, received_at, last_error FROM crashes WHERE crash_id = ?')
        .get(crashId) as CrashRow | undefined;
      if (!row || (onlyDead && row.state !== 'dead')) return undefined;
      new CrashRows(db).delete({ seq: row.seq, crashId: row.crash_id });
      return toPurged(row);
    })
    .immediate();
}

/** Deletes one crash (any state). Throws CrashNotFound. */
export function purgeCrash(spool: InspectedSpool, crashId: string, onPurged: (crash: PurgedCrash) => void): PurgedCrash[] {
  const purged = purgeOne(spool.db, crashId, false);
  if (!purged) throw new CrashNotFound(crashId);
  onPurged(purged);
  return [purged];
}

/**
 * Deletes every dead crash, one crash per transaction so the collector's writer never waits
 * long. A crash requeued meanwhile (no longer dead) is skipped.
 */
export function purgeAllDead(spool: InspectedSpool, onPurged: (crash: PurgedCrash) => void): PurgedCrash[] {
  const ids = (spool.db.prepare(`SELECT crash_id FROM crashes WHERE state = 'dead' ORDER BY seq`).all() as { crash_id: string }[]).map(
    (row) => row.crash_id,
  );
  const purged: PurgedCrash[] = [];
  for (const crashId of ids) {
    const crash = purgeOne(spool.db, crashId, true);
    if (!crash) continue;
    onPurged(crash);
    purged.push(crash);
  }
  return purged;
}

/** Closes the connection (a read-only one leaves the WAL as it is). */
export function closeInspectedSpool(spool: InspectedSpool): void {
  if (spool.db.open) spool.db.close();
}
