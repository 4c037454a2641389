/**
 * A crash's dumps as the spool keeps them — their own bytes, or places in the crash's body kept as
 * sent — read with the check that the crash is (still) there (I7). The drainer reads them to
 * upload; the operator's tools to show and export.
 */
import type Database from 'better-sqlite3';
import { gunzipSync } from 'node:zlib';
import type { Dump } from '../crash.js';
import type { CrashRef } from './crash-rows.js';
import { SpoolError } from './schema.js';

export interface DumpRow {
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
export function dumpsOf(rows: DumpRow[], inflated: Buffer | undefined): Dump[] {
  return rows.map(({ name, data, offset, length }) => {
    if (offset === null) return { name, data };
    const end = offset + (length ?? 0);
    if (!inflated || end > inflated.length) throw new SpoolError(`dump ${name} lies outside the body stored with its crash`);
    return { name, data: inflated.subarray(offset, end) };
  });
}
