/**
 * Drains a spool without a collector: for the volume of a node that died for good, attached
 * elsewhere. The same drainer, writer thread and storage settings as the collector; the spool's
 * lock is taken first, so a live collector's spool is refused and left untouched.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { BackgroundErrors } from '../background-errors.js';
import { createMetrics } from '../metrics.js';
import { Drainer } from '../drain/drainer.js';
import { closeSpoolDatabase, crashListing, openSpoolDatabase, SpoolReader, SpoolUsage, type CrashRow, type SpooledCrash } from '../spool/spool.js';
import { lockSpool } from '../spool/spool-lock.js';
import { SpoolWriter } from '../spool/spool-writer.js';
import { createStorage } from '../storage/create-storage.js';

export interface DrainProgress {
  uploaded: number;
  pending: number;
  seconds: number;
}

export interface DrainOutcome {
  uploaded: number;
  seconds: number;
  /** Crashes still in the spool (pending after the time ran out, or dead-lettered). */
  left: Omit<SpooledCrash, 'rawCrashJson'>[];
}

const PROGRESS_INTERVAL_MS = 1000;

/** Uploads every pending crash of `config.spoolDir` until none is left or `maxMs` passed. Throws SpoolLocked while a collector holds the spool. */
export async function drainSpool(config: Config, logger: Logger, maxMs: number, onProgress: (progress: DrainProgress) => void): Promise<DrainOutcome> {
  const lock = lockSpool(config.spoolDir);
  const started = Date.now();
  try {
    const db = openSpoolDatabase(config.spoolDir, { durability: config.durability, create: false });
    const reader = new SpoolReader(db);
    const usage = new SpoolUsage(reader.stats().bytes, { dir: config.spoolDir, maxBytes: config.spoolMaxBytes, minFreeBytes: 0 });
    let writerDied: Error | undefined;
    const metrics = createMetrics();
    const errors = new BackgroundErrors(logger, metrics.backgroundErrors);
    const writer = await SpoolWriter.start({
      dir: config.spoolDir,
      durability: config.durability,
      usage,
      reusableBytes: () => reader.reusableBytes(),
      onFatal: (error) => (writerDied = error),
      checkpoints: { everyBytes: config.spoolCheckpointBytes, eagerBelowFreeBytes: 4 * config.spoolCheckpointBytes },
      errors,
    });
    const storage = createStorage(config, logger);
    const drainer = new Drainer(
      reader,
      writer,
      storage,
      {
        concurrency: config.drainConcurrency,
        maxInflightBytes: config.drainInflightMaxBytes,
        concurrencyWhileReceiving: config.drainConcurrency,
        yieldMaxMs: 0,
        retry: { baseMs: config.retryBaseSeconds * 1000, maxMs: config.retryMaxSeconds * 1000 },
        maxAttempts: config.maxAttempts,
      },
      logger,
      metrics,
      { receiving: () => false, spoolFillingUp: () => false },
    );
    const report = () => onProgress({ uploaded: drainer.uploaded, pending: reader.stats().pending, seconds: (Date.now() - started) / 1000 });
    const progress = setInterval(errors.guard('drain_progress', report), PROGRESS_INTERVAL_MS);
    try {
      drainer.start();
      await drainer.untilEmpty(started + maxMs);
    } finally {
      clearInterval(progress);
      drainer.stop();
      storage.destroy();
    }
    report();
    await writer.close();
    if (writerDied) throw writerDied;
    const rows = db.prepare('SELECT seq, crash_id, received_at, dump_names, bytes, state, attempts, next_attempt_at, last_error FROM crashes ORDER BY seq').all() as CrashRow[];
    closeSpoolDatabase(db);
    return { uploaded: drainer.uploaded, seconds: (Date.now() - started) / 1000, left: rows.map(crashListing) };
  } finally {
    lock.release();
  }
}
