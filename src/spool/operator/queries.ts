/**
 * What an operator can see in a spool (the reads behind `scripts/spool-inspect`), free of argument
 * parsing and output formatting: counts and errors, listings, one crash, its export.
 */
import type Database from 'better-sqlite3';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../../sha256.js';
import { checkIntegrity, crashListing, toSpooled, type CrashRow, type CrashState, type SpooledCrash } from '../schema.js';
import { StoredDumps } from '../stored-dumps.js';
import { CrashNotFound, type InspectedSpool } from './inspection.js';

export interface AttemptsBucket {
  attempts: number;
  pending: number;
  dead: number;
}

/** Merges per-(attempts, state) counts into one row per attempts value, ascending; stored crashes have no uploads left to count. Pure. */
export function attemptsHistogram(counts: readonly { attempts: number; state: CrashState; crashes: number }[]): AttemptsBucket[] {
  const buckets = new Map<number, AttemptsBucket>();
  for (const { attempts, state, crashes } of counts) {
    if (state === 'stored') continue;
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
    if (count.state === 'stored') continue;
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
  /** Stored, their IDs waiting for the processing queue. */
  stored: number;
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
        `SELECT COALESCE(SUM(state = 'pending'), 0) AS pending, COALESCE(SUM(state = 'stored'), 0) AS stored, COALESCE(SUM(state = 'dead'), 0) AS dead,
                COALESCE(SUM(bytes), 0) AS bytes, MIN(received_at) AS oldest, MAX(received_at) AS newest,
                MIN(CASE WHEN state = 'pending' THEN received_at END) AS oldestPending
         FROM crashes`,
      )
      .get() as { pending: number; stored: number; dead: number; bytes: number; oldest: number | null; newest: number | null; oldestPending: number | null };
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
    stored: totals.stored,
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


const LISTING_COLUMNS = 'seq, crash_id, received_at, dump_names, bytes, state, attempts, next_attempt_at, last_error, stored_at';

/** Crashes in spool order (the order they were received), newest first unless `oldestFirst`. */
export function listCrashes(spool: Pick<InspectedSpool, 'db'>, options: ListOptions = {}): CrashListing[] {
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

/** The dumps of a crash row read in the caller's transaction (so it is there). */
function readDumps(db: Database.Database, row: CrashRow): { name: string; data: Buffer }[] {
  return new StoredDumps(db).readSync({ seq: row.seq, crashId: row.crash_id }) ?? [];
}

/** One crash with its dumps' sizes and checksums. Throws CrashNotFound. */
export function showCrash(spool: InspectedSpool, crashId: string): CrashDetail {
  const { db } = spool;
  return db.transaction(() => {
    const row = findCrash(db, crashId);
    if (!row) throw new CrashNotFound(crashId);
    const dumps = readDumps(db, row).map(({ name, data }) => ({ name, bytes: data.length, sha256: sha256Hex(data) }));
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
export interface ExportedCrash {
  files: ExportedFile[];
  /** Dumps already in storage: a crash's dumps leave the spool once it is stored, its raw crash stays until it is announced. */
  dumpsInStorage: string[];
}

export function exportCrash(spool: InspectedSpool, crashId: string, dir: string): ExportedCrash {
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
  const spooledDumps = new Set(dumps.map((dump) => dump.name));
  return {
    files: files.map((file) => ({ path: file.path, bytes: file.data.length, sha256: sha256Hex(file.data) })),
    dumpsInStorage: (JSON.parse(row.dump_names) as string[]).filter((name) => !spooledDumps.has(name)),
  };
}

/** `export` refuses to overwrite an existing file. */
export class ExportTargetExists extends Error {
  constructor(readonly path: string) {
    super(`${path} exists; export into an empty or new directory`);
  }
}
