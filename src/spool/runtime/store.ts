/**
 * Every write the collector makes to the spool, applied by the writer thread on its connection.
 *
 * - I1 ack ⇒ durable: `SpoolStore.apply` returns only after the transaction holding the crash
 *   (raw crash and every dump) has committed, and `SpoolWriter.append` resolves only then. With
 *   durability `full` the WAL is fsynced at commit (`synchronous=FULL`), so the crash survives
 *   power loss; with `normal` it survives kill -9.
 * - I2 delete ⇒ uploaded: a `remove` is only sent by the drainer after every object was confirmed.
 * - I7: removes and failure records name the crash by row number and crash ID (CrashRows).
 * - Nothing is stored half-way: a crash and its dumps go in one transaction.
 */
import type Database from 'better-sqlite3';
import { CrashRows, type CrashRef, type FailureRecord } from '../crash-rows.js';
import { DedupIndex } from '../dedup-index.js';

const NO_BYTES = Buffer.alloc(0);

/** Bytes that crossed a thread boundary arrive as a Uint8Array; SQLite binds Buffers. */
const asBuffer = (data: Uint8Array) => (Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));

/** A dump as the writer thread gets it: its bytes, or where it lies in the crash's inflated body. */
export type DumpToStore = { name: string; data: Uint8Array } | { name: string; offset: number; length: number };

/** One write to the spool; the spool writer thread applies them in batches (writer.ts). */
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
  | { kind: 'stored'; crash: CrashRef; storedAt: number; bytes: number }
  | { kind: 'expireDedup'; before: number; limit: number }
  | { kind: 'failure'; crash: CrashRef; failure: FailureRecord }
  | { kind: 'probe' }
  /** A value of the spool's own (`meta`); null deletes it. */
  | { kind: 'meta'; key: string; value: string | null };

/**
 * Whether a write must be on disk before it is answered, with SPOOL_DURABILITY=full. An append
 * must (I1: it is acknowledged next), and so must the health probe (it proves that such commits
 * work) and the spool's own values (whether it announces: a start after a power cut must still
 * know). The drain stage's writes after storage or the queue confirmed a crash — mark stored,
 * remove, a failure note — need not: lost to a power cut, the crash is uploaded or announced once
 * more, which I3 and I13 allow; WAL keeps them in order, and the next fsynced commit (or
 * checkpoint) takes them to disk with it.
 */
export function mustBeFsynced(op: WriteOp): boolean {
  return op.kind === 'append' || op.kind === 'probe' || op.kind === 'meta';
}

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
  private readonly setMeta: Database.Statement;
  private readonly deleteMeta: Database.Statement;
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
    this.setMeta = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
    this.deleteMeta = db.prepare('DELETE FROM meta WHERE key = ?');
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
      case 'stored':
        // I2: only for a crash whose every object storage has confirmed; its dumps go now.
        return { found: this.rows.markStored(op.crash, op.storedAt, op.bytes) };
      case 'failure':
        // Only while the crash is in the state the failure is of (pending for uploads, stored for announcements).
        return { found: this.rows.recordFailure(op.crash, op.failure) };
      case 'probe':
        this.probe.run(new Date().toISOString());
        return;
      case 'meta':
        if (op.value === null) this.deleteMeta.run(op.key);
        else this.setMeta.run(op.key, op.value);
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
