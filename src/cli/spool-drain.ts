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
import { drainerOptions } from '../drain/drainer-options.js';
import { createStorage } from '../storage/create-storage.js';
import { SpoolRuntime } from '../spool/spool-runtime.js';
import { listCrashes, type CrashListing } from '../spool/spool-queries.js';

export interface DrainProgress {
  uploaded: number;
  pending: number;
  seconds: number;
}

export interface DrainOutcome {
  uploaded: number;
  seconds: number;
  /** Crashes still in the spool (pending after the time ran out, or dead-lettered). */
  left: CrashListing[];
}

const PROGRESS_INTERVAL_MS = 1000;

/** Uploads every pending crash of `config.spoolDir` until none is left or `maxMs` passed. Throws SpoolLocked while a collector holds the spool. */
export async function drainSpool(config: Config, logger: Logger, maxMs: number, onProgress: (progress: DrainProgress) => void): Promise<DrainOutcome> {
  const started = Date.now();
  const metrics = createMetrics();
  const errors = new BackgroundErrors(logger, metrics.backgroundErrors);
  let writerDied: Error | undefined;
  const spool = await SpoolRuntime.open({
    dir: config.spoolDir,
    durability: config.durability,
    maxBytes: config.spoolMaxBytes,
    minFreeBytes: 0,
    checkpointBytes: config.spoolCheckpointBytes,
    create: false,
    onFatal: (error) => (writerDied = error),
    errors,
  });
  let uploaded = 0;
  try {
    const storage = createStorage(config, logger);
    // Nothing is received here: every upload slot is for the backlog.
    const options = { ...drainerOptions(config), concurrencyWhileReceiving: config.drainConcurrency, yieldMaxMs: 0 };
    const drainer = new Drainer({ spool: spool.reader, writer: spool.writer, storage, options, logger, metrics });
    const report = () => onProgress({ uploaded: drainer.uploaded, pending: spool.reader.stats().pending, seconds: (Date.now() - started) / 1000 });
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
    uploaded = drainer.uploaded;
  } catch (error) {
    await spool.close();
    throw error;
  }
  const left = (await spool.close((reader) => listCrashes(reader, { oldestFirst: true })))!;
  if (writerDied) throw writerDied;
  return { uploaded, seconds: (Date.now() - started) / 1000, left };
}
