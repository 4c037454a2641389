/**
 * How an operator's tools open a spool, on a connection of their own; never creating one.
 *
 * Safe next to a running collector:
 * - Reads use a read-only connection (`openSpoolForInspection(dir, 'read')`). In WAL mode a
 *   reader never blocks the collector's writer and sees one committed snapshot per transaction;
 *   each read is one short transaction, so the WAL can still be checkpointed.
 * - Writes (requeue, purge: operator/admin.ts) take the write lock with `BEGIN IMMEDIATE` under
 *   `busy_timeout`, and hold it for one crash or one small batch at a time, so ingest waits at
 *   most a few milliseconds and never gets SQLITE_BUSY from us.
 * - Nothing here creates a spool: a missing directory or file is a `SpoolUnusable` error.
 */
import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readableSchemaVersion, SCHEMA_VERSION, SPOOL_FILE, SpoolError, upgradeSchema } from '../schema.js';

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
    const version = readableSchemaVersion(db, file, 'spool-inspect');
    // An earlier version is read as it is, and upgraded in place before any change.
    if (version < SCHEMA_VERSION && !readonly) upgradeSchema(db);
  } catch (error) {
    db.close();
    throw error instanceof SpoolError ? new SpoolUnusable(error.message) : error;
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

/** Closes the connection (a read-only one leaves the WAL as it is). */
export function closeInspectedSpool(spool: InspectedSpool): void {
  if (spool.db.open) spool.db.close();
}
