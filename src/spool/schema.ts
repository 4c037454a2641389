/**
 * The spool's database: its schema (and the upgrades of older spools, in place), the pragmas every
 * connection needs, and the row types. Every acknowledged crash lives in it until storage confirmed
 * all of its objects (docs/INVARIANTS.md).
 *
 * - I7 a crash's row number is never reused (`AUTOINCREMENT`, schema version 3); every change to
 *   one crash names it by row number *and* crash ID (crash-rows.ts).
 *
 * Each user opens its own connection: the writer thread (all the collector's writes), the drainer
 * (reads), spool-inspect. better-sqlite3 is synchronous: every call blocks the calling thread for
 * its duration, which is why the collector's writes, fsyncs and checkpoints run in a thread of
 * their own (writer.ts).
 */
import Database from 'better-sqlite3';
import { DEDUP_LOG_TABLE } from './dedup-index.js';
import { existsSync } from 'node:fs';
import { mkdirDurableSync } from '../durable-fs.js';
import { join } from 'node:path';

export const SPOOL_FILE = 'spool.db';
/**
 * 2: a crash may keep its gzipped body as sent (`bodies`) and its dumps as places in it.
 * 3: row numbers are never reused (I7); a crash can be `stored` (every object confirmed by
 *    storage, its ID not yet confirmed by the processing queue), stored at `stored_at`.
 */
export const SCHEMA_VERSION = 3;
/**
 * Automatic checkpoint of connections other than the collector's writer (spool-inspect's small
 * writes): 8 MiB of 64 KiB pages, 512 KiB of 4 KiB ones.
 */
export const WAL_CHECKPOINT_PAGES = 128;
/**
 * Page size of new spools. Each commit writes the pages it changed whole: with 64 KiB pages a
 * commit of a few small crashes wrote ~0.5 MiB (b-tree leaves of four tables and indexes, half an
 * overflow page per blob); 4 KiB pages cut that to a few percent. Existing spools keep theirs.
 */
export const NEW_SPOOL_PAGE_SIZE = 4096;

export type Durability = 'full' | 'normal';
/**
 * `pending`: to upload. `stored`: storage confirmed every object and its dumps are gone from the
 * spool; its ID waits for the processing queue (PUBLISH_URL). `dead`: storage refused it for good,
 * or — with `stored_at` set — the queue refused its ID for good (in storage, never announced).
 */
export type CrashState = 'pending' | 'stored' | 'dead';

export class SpoolError extends Error {}

/** One spooled crash without its dump bytes. */
export interface SpooledCrash {
  seq: number;
  crashId: string;
  receivedAt: number;
  /** The raw crash exactly as spooled; uploaded verbatim. */
  rawCrashJson: string;
  dumpNames: string[];
  bytes: number;
  state: CrashState;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  /** When storage confirmed every object (ms), for a `stored` crash. */
  storedAt: number | null;
}

/** A row of the `crashes` table as SQLite returns it (`raw_crash` only where selected). */
export interface CrashRow {
  seq: number;
  crash_id: string;
  received_at: number;
  raw_crash?: string;
  dump_names: string;
  bytes: number;
  state: CrashState;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  stored_at?: number | null;
}

const CRASHES_TABLE = (name: string) => `
  CREATE TABLE ${name} (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    crash_id TEXT NOT NULL UNIQUE,
    received_at INTEGER NOT NULL,
    raw_crash TEXT NOT NULL,
    dump_names TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'stored', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    stored_at INTEGER
  );
`;
const CRASHES_INDEXES = `
  CREATE INDEX crashes_by_state ON crashes (state, seq);
  CREATE INDEX crashes_by_due ON crashes (state, next_attempt_at);
`;

/**
 * A dump with a `body_offset` has no bytes of its own (`data` is empty); it is the `body_length`
 * bytes at that offset of the crash's body in `bodies`, once inflated.
 */
const SCHEMA = `
  ${CRASHES_TABLE('crashes')}
  ${CRASHES_INDEXES}
  CREATE TABLE dumps (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    body_offset INTEGER,
    body_length INTEGER
  );
  CREATE INDEX dumps_by_crash ON dumps (seq);
  CREATE TABLE bodies (seq INTEGER PRIMARY KEY, gzip BLOB NOT NULL);
  PRAGMA user_version = ${SCHEMA_VERSION};
`;

/** Version 1 to 2: bodies kept as sent. */
const UPGRADE_TO_2 = `
  ALTER TABLE dumps ADD COLUMN body_offset INTEGER;
  ALTER TABLE dumps ADD COLUMN body_length INTEGER;
  CREATE TABLE bodies (seq INTEGER PRIMARY KEY, gzip BLOB NOT NULL);
  PRAGMA user_version = 2;
`;

const CRASH_COLUMNS = 'seq, crash_id, received_at, raw_crash, dump_names, bytes, state, attempts, next_attempt_at, last_error';

/**
 * Version 2 to 3: SQLite cannot add AUTOINCREMENT to a table, so the crash rows (not the dumps)
 * are copied into one that has it, keeping their numbers; the sequence starts above every number
 * in use, dumps and bodies included.
 */
const UPGRADE_TO_3 = `
  ${CRASHES_TABLE('crashes_v3')}
  INSERT INTO crashes_v3 (${CRASH_COLUMNS}) SELECT ${CRASH_COLUMNS} FROM crashes ORDER BY seq;
  DROP TABLE crashes;
  ALTER TABLE crashes_v3 RENAME TO crashes;
  ${CRASHES_INDEXES}
  DELETE FROM sqlite_sequence WHERE name IN ('crashes', 'crashes_v3');
  INSERT INTO sqlite_sequence (name, seq) SELECT 'crashes', MAX(
    (SELECT COALESCE(MAX(seq), 0) FROM crashes), (SELECT COALESCE(MAX(seq), 0) FROM dumps), (SELECT COALESCE(MAX(seq), 0) FROM bodies));
  PRAGMA user_version = 3;
`;

/** Added after the first spools were written; created when missing. */
const META_TABLE = 'CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)';

/** A crash row without its raw crash: what listings show. */
export function crashListing(row: CrashRow): Omit<SpooledCrash, 'rawCrashJson'> {
  return {
    seq: row.seq,
    crashId: row.crash_id,
    receivedAt: row.received_at,
    dumpNames: JSON.parse(row.dump_names) as string[],
    bytes: row.bytes,
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    storedAt: row.stored_at ?? null,
  };
}


/** A crash row as the drainer uploads it. */
export function toSpooled(row: CrashRow): SpooledCrash {
  return { ...crashListing(row), rawCrashJson: row.raw_crash ?? '' };
}

export interface OpenOptions {
  durability: Durability;
  /** Create the directory and database when missing (the collector); inspection tools pass false. */
  create: boolean;
  readonly?: boolean;
}

/** Opens (and on first use creates) the spool database with the pragmas every connection needs. */
export function openSpoolDatabase(dir: string, options: OpenOptions): Database.Database {
  const file = join(dir, SPOOL_FILE);
  const isNew = !existsSync(file);
  if (isNew && !options.create) throw new SpoolError(`no spool at ${file}`);
  if (isNew) mkdirDurableSync(dir);

  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: options.readonly ?? false, fileMustExist: !options.create });
    db.pragma('busy_timeout = 5000');
    if (isNew) db.pragma(`page_size = ${NEW_SPOOL_PAGE_SIZE}`);
    if (!options.readonly) db.pragma('journal_mode = WAL');
    // When the collector's WAL is checkpointed is decided in runtime/writer.ts and runtime/checkpoint-policy.ts; this is the bound for
    // everyone else. After a checkpoint the WAL file is cut back to 16 MiB.
    db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
    db.pragma('journal_size_limit = 16777216');
    db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
    if ((db.pragma('user_version', { simple: true }) as number) === 0 && !options.readonly) {
      db.exec(`BEGIN IMMEDIATE; ${SCHEMA} COMMIT;`);
    }
    const version = readableSchemaVersion(db, file, 'collector');
    if (!options.readonly) {
      if (version < SCHEMA_VERSION) upgradeSchema(db);
      db.exec(META_TABLE);
      db.exec(DEDUP_LOG_TABLE);
    }
  } catch (error) {
    db?.close();
    if (error instanceof SpoolError) throw error;
    throw new SpoolError(
      `cannot open spool ${file}: ${(error as Error).message}. If the file is damaged, move ${dir} aside ` +
        '(keep it for recovery with scripts/spool-inspect) and start with an empty spool directory.',
    );
  }
  return db;
}

/**
 * The spool's schema version when `user` can read it: 1 to SCHEMA_VERSION (an earlier one is read
 * as it is, and upgraded in place before any change). Throws SpoolError naming the way out.
 */
export function readableSchemaVersion(db: Database.Database, file: string, user: 'collector' | 'spool-inspect'): number {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version >= 1 && version <= SCHEMA_VERSION) return version;
  if (version === 0) return notReadable(`${file} is not a crashspool spool (an empty or foreign SQLite database: schema version 0)`);
  return notReadable(
    `spool ${file} has schema version ${version}; this ${user} reads versions 1 to ${SCHEMA_VERSION}. ` +
      (user === 'collector' ? 'Drain it with the collector version that wrote it, or move it aside.' : 'Use the spool-inspect of the collector version that wrote it'),
  );
}

function notReadable(message: string): never {
  throw new SpoolError(message);
}

/**
 * Brings a spool of an earlier schema version to this one in place, in one transaction (a spool
 * another connection upgraded meanwhile is left as it is).
 */
export function upgradeSchema(db: Database.Database): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === 1) db.exec(UPGRADE_TO_2);
    if (version === 1 || version === 2) db.exec(UPGRADE_TO_3);
  }).immediate();
}

/** Verifies the spool's structure; returns SQLite's findings, or ['ok']. */
export function checkIntegrity(db: Database.Database): string[] {
  const rows = db.pragma('quick_check') as { quick_check: string }[];
  return rows.map((row) => row.quick_check);
}


/** Checkpoints the WAL into the main file and closes; the next open then starts from a clean file. */
export function closeSpoolDatabase(db: Database.Database): void {
  if (!db.open) return;
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}
