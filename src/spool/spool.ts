/**
 * The SQLite spool: every acknowledged crash lives here until storage confirmed all of its objects.
 *
 * Invariants kept in this module:
 * - I1 ack ⇒ durable: `SpoolStore.apply` returns only after the transaction holding the crash
 *   (raw crash and every dump) has committed, and `SpoolWriter.append` resolves only then. With durability `full` the WAL is fsynced at commit
 *   (`synchronous=FULL`), so the crash survives power loss; with `normal` it survives kill -9.
 * - I2 delete ⇒ uploaded: a `remove` is only sent by the drainer after every object was confirmed.
 * - I7 a crash's row number is never reused (`AUTOINCREMENT`), and every change to one crash names
 *   it by row number *and* crash ID (`CrashRows`): a crash deleted by an operator while the
 *   drainer uploads it can never make that upload's remove or failure touch another crash.
 * - Nothing is stored half-way: a crash and its dumps go in one transaction.
 * The invariants and the tests that prove them: docs/INVARIANTS.md.
 *
 * Each user opens its own connection: the writer thread (all the collector's writes), the drainer
 * (reads), spool-inspect. better-sqlite3 is synchronous: every call here blocks the calling thread
 * for its duration, which is why the collector's writes, fsyncs and checkpoints run in a thread of
 * their own (spool-writer.ts).
 */
import Database from 'better-sqlite3';
import { CrashRows, type CrashRef, type FailureRecord } from './crash-rows.js';
import { DedupIndex, DEDUP_LOG_TABLE } from './dedup-index.js';
import { existsSync, statfsSync } from 'node:fs';
import { mkdirDurableSync } from '../durable-fs.js';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gunzipSync } from 'node:zlib';
import type { Dump } from '../crash.js';

const gunzipInPool = promisify(gunzip);

export const SPOOL_FILE = 'spool.db';
/**
 * 2: a crash may keep its gzipped body as sent (`bodies`) and its dumps as places in it.
 * 3: row numbers are never reused (I7).
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
export type CrashState = 'pending' | 'dead';

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
}

const CRASHES_TABLE = (name: string) => `
  CREATE TABLE ${name} (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    crash_id TEXT NOT NULL UNIQUE,
    received_at INTEGER NOT NULL,
    raw_crash TEXT NOT NULL,
    dump_names TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
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
  };
}

function toSpooled(row: CrashRow): SpooledCrash {
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

  let db: Database.Database;
  try {
    db = new Database(file, { readonly: options.readonly ?? false, fileMustExist: !options.create });
    db.pragma('busy_timeout = 5000');
    if (isNew) db.pragma(`page_size = ${NEW_SPOOL_PAGE_SIZE}`);
    if (!options.readonly) db.pragma('journal_mode = WAL');
    // When the collector's WAL is checkpointed is decided in spool-writer.ts; this is the bound for
    // everyone else. After a checkpoint the WAL file is cut back to 16 MiB.
    db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
    db.pragma('journal_size_limit = 16777216');
    db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
    let version = db.pragma('user_version', { simple: true }) as number;
    if (version === 0 && !options.readonly) {
      db.exec(`BEGIN IMMEDIATE; ${SCHEMA} COMMIT;`);
      version = SCHEMA_VERSION;
    } else if (version > 0 && version < SCHEMA_VERSION && !options.readonly) {
      upgradeSchema(db);
      version = SCHEMA_VERSION;
    }
    if (version === SCHEMA_VERSION && !options.readonly) {
      db.exec(META_TABLE);
      db.exec(DEDUP_LOG_TABLE);
    } else if (version !== SCHEMA_VERSION) {
      db.close();
      throw new SpoolError(
        `spool ${file} has schema version ${version}; this collector reads version ${SCHEMA_VERSION}. ` +
          'Drain it with the collector version that wrote it, or move it aside.',
      );
    }
  } catch (error) {
    if (error instanceof SpoolError) throw error;
    throw new SpoolError(
      `cannot open spool ${file}: ${(error as Error).message}. If the file is damaged, move ${dir} aside ` +
        '(keep it for recovery with scripts/spool-inspect) and start with an empty spool directory.',
    );
  }
  return db;
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

const NO_BYTES = Buffer.alloc(0);

/** Bytes that crossed a thread boundary arrive as a Uint8Array; SQLite binds Buffers. */
const asBuffer = (data: Uint8Array) => (Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));

/** A dump as the writer thread gets it: its bytes, or where it lies in the crash's inflated body. */
export type DumpToStore = { name: string; data: Uint8Array } | { name: string; offset: number; length: number };

/** One write to the spool; the spool writer thread applies them in batches (spool-writer.ts). */
export type WriteOp =
  | {
      kind: 'append';
      crashId: string;
      receivedAt: number;
      rawCrashJson: string;
      dumpNamesJson: string;
      bytes: number;
      dumps: DumpToStore[];
      /** The body as sent, when dumps are places in it. */
      sentGzip?: Uint8Array;
      dedup?: DedupKey;
    }
  | { kind: 'remove'; crash: CrashRef }
  | { kind: 'expireDedup'; before: number; limit: number }
  | { kind: 'failure'; crash: CrashRef; failure: FailureRecord }
  | { kind: 'probe' };

/** How a report is recognised when it comes again (see report-identity.ts). */
export interface DedupKey {
  identity: string;
  content: string;
  /** Crashpad's report UUID, when the identity is made of it (for the notes on a collision). */
  reportUuid?: string;
  /** Index entries created before this time (ms) are expired: not matched. */
  notBefore: number;
}

/**
 * What a write did: an append either stored the crash or found it was a repeat of an earlier
 * report (then nothing is stored and the earlier crash ID is the answer); an expiry counts the
 * index entries it removed; a remove or failure says whether the crash was still there.
 */
export type WriteResult = { duplicateOf: string } | { expired: number } | { found: boolean } | undefined;

/** Adds a note to a raw crash's `metadata.collector_notes`. */
function withNote(rawCrashJson: string, note: string): string {
  const rawCrash = JSON.parse(rawCrashJson) as { metadata?: { collector_notes?: string[] } };
  rawCrash.metadata ??= {};
  (rawCrash.metadata.collector_notes ??= []).push(note);
  return JSON.stringify(rawCrash);
}

/**
 * Every write the collector makes to the spool, on one connection. A crash and all its dumps are
 * one `append`; `apply` commits a batch of writes in one transaction (group commit), so when it
 * returns, every append in the batch is durable (I1) — or none is, when it throws.
 */
export class SpoolStore {
  private readonly insertCrash: Database.Statement;
  private readonly insertDump: Database.Statement;
  private readonly insertBody: Database.Statement;
  private readonly rows: CrashRows;
  private readonly probe: Database.Statement;
  private readonly dedup: DedupIndex;
  private readonly rawCrashOf: Database.Statement;
  private readonly updateRawCrash: Database.Statement;

  constructor(readonly db: Database.Database) {
    // A crash ID already spooled can only be one a sender chose (Antenna's stage submitter) and sent again.
    this.insertCrash = db.prepare(
      'INSERT INTO crashes (crash_id, received_at, raw_crash, dump_names, bytes) VALUES (?, ?, ?, ?, ?) ON CONFLICT (crash_id) DO NOTHING',
    );
    this.insertDump = db.prepare('INSERT INTO dumps (seq, name, data, body_offset, body_length) VALUES (?, ?, ?, ?, ?)');
    this.insertBody = db.prepare('INSERT INTO bodies (seq, gzip) VALUES (?, ?)');
    this.rows = new CrashRows(db);
    this.probe = db.prepare(`INSERT OR REPLACE INTO meta (key, value) VALUES ('heartbeat', ?)`);
    this.dedup = new DedupIndex(db);
    this.rawCrashOf = db.prepare('SELECT raw_crash FROM crashes WHERE crash_id = ?').pluck();
    this.updateRawCrash = db.prepare('UPDATE crashes SET raw_crash = ? WHERE crash_id = ?');
  }

  /** Commits `ops` in one transaction; the result of each, in order. */
  apply(ops: readonly WriteOp[]): WriteResult[] {
    let results: WriteResult[];
    try {
      results = this.db.transaction(() => ops.map((op) => this.applyOne(op)))();
    } catch (error) {
      this.dedup.rolledBack();
      throw error;
    }
    this.dedup.committed();
    return results;
  }

  private applyOne(op: WriteOp): WriteResult {
    switch (op.kind) {
      case 'append':
        return this.append(op);
      case 'expireDedup':
        return { expired: this.dedup.expire(op.before, op.limit) };
      case 'remove':
        // I2: only for a crash whose every object storage has confirmed.
        return { found: this.rows.delete(op.crash) };
      case 'failure':
        return { found: this.rows.recordFailure(op.crash, op.failure) };
      case 'probe':
        this.probe.run(new Date().toISOString());
        return;
    }
  }

  /**
   * Stores the crash, unless its report was stored before (same identity and content within the
   * window): then the earlier crash ID. Looked up and recorded in the crash's own transaction, so
   * the index is exactly as durable as the crashes (and a repeat in the same batch is found too).
   */
  private append(op: Extract<WriteOp, { kind: 'append' }>): WriteResult {
    let rawCrashJson = op.rawCrashJson;
    if (op.dedup) {
      const earlier = this.dedup.lookup(op.dedup.identity, op.dedup.notBefore);
      const same = earlier.find((entry) => entry.content === op.dedup!.content);
      if (same) return { duplicateOf: same.crashId };
      const first = earlier[0];
      if (first && op.dedup.reportUuid) {
        // The same report UUID with other bytes: a different crash, noted on both while the first is still here.
        const uuid = op.dedup.reportUuid;
        rawCrashJson = withNote(rawCrashJson, `report ${uuid} was received before with other dumps, as ${first.crashId}`);
        const firstRaw = this.rawCrashOf.get(first.crashId) as string | undefined;
        if (firstRaw !== undefined) {
          this.updateRawCrash.run(withNote(firstRaw, `report ${uuid} was received again with other dumps, as ${op.crashId}`), first.crashId);
        }
      }
    }
    const { changes, lastInsertRowid } = this.insertCrash.run(op.crashId, op.receivedAt, rawCrashJson, op.dumpNamesJson, op.bytes);
    if (changes === 0) return { duplicateOf: op.crashId };
    if (op.sentGzip) this.insertBody.run(lastInsertRowid, asBuffer(op.sentGzip));
    for (const dump of op.dumps) {
      if ('data' in dump) this.insertDump.run(lastInsertRowid, dump.name, asBuffer(dump.data), null, null);
      else this.insertDump.run(lastInsertRowid, dump.name, NO_BYTES, dump.offset, dump.length);
    }
    if (op.dedup) this.dedup.add(op.dedup.identity, { content: op.dedup.content, crashId: op.crashId, createdAt: op.receivedAt });
    return undefined;
  }
}

export interface SpoolStats {
  pending: number;
  dead: number;
  bytes: number;
  /** Receive time (ms) of the oldest pending crash; null when none is pending. */
  oldestPendingAt: number | null;
  /** Receive time (ms) of the oldest dead-letter crash, or null. */
  oldestDeadAt: number | null;
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

  constructor(readonly db: Database.Database) {
    // Called for every crash received (the free-space reserve): prepared once.
    this.freePagesStatement = db.prepare('PRAGMA freelist_count').pluck();
    this.oldestDueStatement = db.prepare(
      `SELECT received_at FROM crashes WHERE state = 'pending' AND +next_attempt_at <= ? ORDER BY seq LIMIT 1`,
    ).pluck();
    this.pageSize = db.pragma('page_size', { simple: true }) as number;
    this.dueStatement = db.prepare(DUE_SQL);
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

  /** Counts over the whole spool: one pass over the crash rows (not the dumps). */
  stats(): SpoolStats {
    const row = this.db
      .prepare(
        `SELECT COALESCE(SUM(state = 'pending'), 0) AS pending, COALESCE(SUM(state = 'dead'), 0) AS dead,
                COALESCE(SUM(bytes), 0) AS bytes, MIN(CASE WHEN state = 'pending' THEN received_at END) AS oldest,
                MIN(CASE WHEN state = 'dead' THEN received_at END) AS oldest_dead
         FROM crashes`,
      )
      .get() as { pending: number; dead: number; bytes: number; oldest: number | null; oldest_dead: number | null };
    return { pending: row.pending, dead: row.dead, bytes: row.bytes, oldestPendingAt: row.oldest, oldestDeadAt: row.oldest_dead };
  }
}

interface DumpRow {
  name: string;
  data: Buffer;
  offset: number | null;
  length: number | null;
}

/**
 * A crash's dump rows, and its body as sent when any dump is a place in it, read in one
 * transaction with the check that the crash is (still) there.
 */
export class StoredDumps {
  private readonly crashStatement: Database.Statement;
  private readonly rowsStatement: Database.Statement;
  private readonly bodyStatement: Database.Statement | undefined;
  private readonly readAll: (crash: CrashRef) => { rows: DumpRow[]; sentGzip: Buffer | undefined } | undefined;

  constructor(db: Database.Database) {
    // spool-inspect may read a version 1 spool without upgrading it: no body there.
    const withBodies = (db.pragma('user_version', { simple: true }) as number) >= 2;
    this.crashStatement = db.prepare('SELECT 1 FROM crashes WHERE seq = ? AND crash_id = ?').pluck();
    this.rowsStatement = db.prepare(
      withBodies
        ? 'SELECT name, data, body_offset AS offset, body_length AS length FROM dumps WHERE seq = ? ORDER BY id'
        : 'SELECT name, data, NULL AS offset, NULL AS length FROM dumps WHERE seq = ? ORDER BY id',
    );
    this.bodyStatement = withBodies ? db.prepare('SELECT gzip FROM bodies WHERE seq = ?').pluck() : undefined;
    this.readAll = db.transaction((crash: CrashRef) => {
      if (this.crashStatement.get(crash.seq, crash.crashId) === undefined) return undefined;
      const rows = this.rowsStatement.all(crash.seq) as DumpRow[];
      const cut = rows.some((row) => row.offset !== null);
      return { rows, sentGzip: cut ? (this.bodyStatement?.get(crash.seq) as Buffer | undefined) : undefined };
    });
  }

  /** Undefined when the crash is not in the spool. */
  read(crash: CrashRef): { rows: DumpRow[]; sentGzip: Buffer | undefined } | undefined {
    return this.readAll(crash);
  }

  /** The dumps as uploaded, inflating a body kept as sent on this thread (for the ops tools); undefined when the crash is not there. */
  readSync(crash: CrashRef): Dump[] | undefined {
    const stored = this.read(crash);
    return stored && dumpsOf(stored.rows, stored.sentGzip && gunzipSync(stored.sentGzip));
  }
}

/** The dumps of rows: their own bytes, or cut from the crash's inflated body. */
function dumpsOf(rows: DumpRow[], inflated: Buffer | undefined): Dump[] {
  return rows.map(({ name, data, offset, length }) => {
    if (offset === null) return { name, data };
    const end = offset + (length ?? 0);
    if (!inflated || end > inflated.length) throw new SpoolError(`dump ${name} lies outside the body stored with its crash`);
    return { name, data: inflated.subarray(offset, end) };
  });
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
