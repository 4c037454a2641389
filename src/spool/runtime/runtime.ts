/**
 * The spool as a process runs it — the collector, or `spool-inspect drain` on the volume of a node
 * that died: the lock (I5: one such process per spool), the drainer's reading connection, the byte
 * count, and the writer thread with its checkpointer. Opened in that order, closed in the reverse.
 */
import type Database from 'better-sqlite3';
import type { BackgroundErrors } from '../../background-errors.js';
import { lockSpool, type SpoolLock } from '../lock.js';
import { SpoolReader } from './reader.js';
import { closeSpoolDatabase, openSpoolDatabase, type Durability } from '../schema.js';
import { SpoolUsage } from './usage.js';
import { SpoolWriter } from './writer.js';

export interface SpoolRuntimeOptions {
  dir: string;
  durability: Durability;
  maxBytes: number;
  /** Free space kept on the spool's file system (SPOOL_MIN_FREE_BYTES); 0 turns the check off. */
  minFreeBytes: number;
  /** SPOOL_CHECKPOINT_BYTES. */
  checkpointBytes: number;
  /** Create the spool when it is missing (the collector); false: a missing spool is an error. */
  create: boolean;
  /** Runs on the reading connection before the writer starts (the collector's integrity check). */
  check?: (reader: SpoolReader) => void;
  /** The writer thread died: nothing more can be committed. */
  onFatal: (error: Error) => void;
  errors?: Pick<BackgroundErrors, 'report'>;
}

export class SpoolRuntime {
  private constructor(
    private readonly lock: SpoolLock,
    private readonly db: Database.Database,
    readonly reader: SpoolReader,
    readonly usage: SpoolUsage,
    readonly writer: SpoolWriter,
  ) {}

  /** Throws SpoolLocked, SpoolDirUnusable, SpoolError (the spool cannot be opened) or the writer's start failure. */
  static async open(options: SpoolRuntimeOptions): Promise<SpoolRuntime> {
    const lock = lockSpool(options.dir);
    let db: Database.Database | undefined;
    try {
      // The drainer's connection only reads; all writes go through the writer thread.
      db = openSpoolDatabase(options.dir, { durability: options.durability, create: options.create });
      const reader = new SpoolReader(db);
      options.check?.(reader);
      const usage = new SpoolUsage(reader.stats().bytes, { dir: options.dir, maxBytes: options.maxBytes, minFreeBytes: options.minFreeBytes });
      const writer = await SpoolWriter.start({
        dir: options.dir,
        durability: options.durability,
        usage,
        reusableBytes: () => reader.reusableBytes(),
        onFatal: options.onFatal,
        checkpoints: { everyBytes: options.checkpointBytes, eagerBelowFreeBytes: options.minFreeBytes + 4 * options.checkpointBytes },
        ...(options.errors ? { errors: options.errors } : {}),
      });
      return new SpoolRuntime(lock, db, reader, usage, writer);
    } catch (error) {
      if (db) closeSpoolDatabase(db);
      lock.release();
      throw error;
    }
  }

  /**
   * Commits what is queued and ends the writer thread; then `last` may read the spool as left;
   * then the WAL is checkpointed, the reading connection closed and the lock released.
   */
  async close<T>(last?: (reader: SpoolReader) => T): Promise<T | undefined> {
    try {
      await this.writer.close();
      return last?.(this.reader);
    } finally {
      closeSpoolDatabase(this.db);
      this.lock.release();
    }
  }
}
