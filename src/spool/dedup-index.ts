/**
 * The dedup index: which crash ID a report (identity + content, see intake/report-identity.ts) got.
 *
 * On disk it is an append-only log in the spool, written in the crash's own transaction, so it is
 * exactly as durable as the crashes and outlives their rows (a retry after the upload still finds
 * it). Lookups go to a map in the writer thread, rebuilt from the log at start. A B-tree keyed by
 * the (random) identity would dirty one 64 KiB spool page per crash at every commit — measured:
 * +120 µs of writer time per crash, and tens of KiB written per crash; appends to the log dirty the
 * last page only.
 */
import type Database from 'better-sqlite3';

export const DEDUP_LOG_TABLE = `
  CREATE TABLE IF NOT EXISTS dedup_log (
    seq INTEGER PRIMARY KEY,
    identity TEXT NOT NULL,
    content TEXT NOT NULL,
    crash_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
`;

export interface DedupEntry {
  content: string;
  crashId: string;
  createdAt: number;
}

interface LogRow {
  seq: number;
  identity: string;
  content: string;
  crash_id: string;
  created_at: number;
}

export class DedupIndex {
  private readonly byIdentity = new Map<string, DedupEntry[]>();
  /** Changes of the open transaction: applied to the map only once it commits. */
  private added: { identity: string; entry: DedupEntry }[] = [];
  private expired: LogRow[] = [];
  private readonly insert: Database.Statement;
  private readonly oldest: Database.Statement;
  private readonly removeThrough: Database.Statement;

  constructor(db: Database.Database) {
    this.insert = db.prepare('INSERT INTO dedup_log (identity, content, crash_id, created_at) VALUES (?, ?, ?, ?)');
    this.oldest = db.prepare('SELECT * FROM dedup_log ORDER BY seq LIMIT ?');
    this.removeThrough = db.prepare('DELETE FROM dedup_log WHERE seq <= ?');
    for (const row of db.prepare('SELECT * FROM dedup_log ORDER BY seq').iterate() as IterableIterator<LogRow>) {
      this.remember(row.identity, { content: row.content, crashId: row.crash_id, createdAt: row.created_at });
    }
  }

  /** Entries of `identity` made at or after `notBefore`, oldest first (those of the open transaction too). */
  lookup(identity: string, notBefore: number): DedupEntry[] {
    const found = (this.byIdentity.get(identity) ?? []).filter((entry) => entry.createdAt >= notBefore);
    for (const pending of this.added) if (pending.identity === identity && pending.entry.createdAt >= notBefore) found.push(pending.entry);
    return found;
  }

  add(identity: string, entry: DedupEntry): void {
    this.insert.run(identity, entry.content, entry.crashId, entry.createdAt);
    this.added.push({ identity, entry });
  }

  /** Removes up to `limit` of the oldest entries made before `before`; returns how many. */
  expire(before: number, limit: number): number {
    // The log is in arrival order, so the expired entries are the first ones.
    const rows = this.oldest.all(limit) as LogRow[];
    const firstFresh = rows.findIndex((row) => row.created_at >= before);
    const expired = firstFresh === -1 ? rows : rows.slice(0, firstFresh);
    if (expired.length === 0) return 0;
    this.removeThrough.run(expired[expired.length - 1]!.seq);
    this.expired.push(...expired);
    return expired.length;
  }

  committed(): void {
    for (const { identity, entry } of this.added) this.remember(identity, entry);
    for (const row of this.expired) this.forget(row);
    this.added = [];
    this.expired = [];
  }

  rolledBack(): void {
    this.added = [];
    this.expired = [];
  }

  private remember(identity: string, entry: DedupEntry): void {
    const list = this.byIdentity.get(identity);
    if (list) list.push(entry);
    else this.byIdentity.set(identity, [entry]);
  }

  private forget(row: LogRow): void {
    const list = this.byIdentity.get(row.identity);
    if (!list) return;
    const kept = list.filter((entry) => !(entry.crashId === row.crash_id && entry.content === row.content));
    if (kept.length === 0) this.byIdentity.delete(row.identity);
    else this.byIdentity.set(row.identity, kept);
  }
}
