/**
 * Drains a spool without a collector: for the volume of a node that died for good, attached
 * elsewhere. The same drain stage (drainer and announcer), writer thread, storage and queue settings as the
 * collector; the spool's lock is taken first, so a live collector's spool is refused and left
 * untouched. A spool that announces is refused without PUBLISH_URL, as the collector refuses it
 * (drain-stage.ts); `--no-announce` (PUBLISH_URL=none) lets its crashes go unannounced, each logged.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { BackgroundErrors } from '../background-errors.js';
import { createMetrics } from '../metrics.js';
import { createDrainStage } from '../drain/drain-stage.js';
import { createPublisher } from '../queue/create-publisher.js';
import { createStorage } from '../storage/create-storage.js';
import { SpoolRuntime } from '../spool/runtime/runtime.js';
import { listCrashes, type CrashListing } from '../spool/operator/queries.js';

export interface DrainProgress {
  uploaded: number;
  pending: number;
  /** Stored, their IDs waiting for the queue (PUBLISH_URL). */
  stored: number;
  seconds: number;
}

export interface DrainOutcome {
  uploaded: number;
  /** Crashes that left unannounced although received while the spool announced (--no-announce). */
  unannounced: number;
  seconds: number;
  /** Crashes still in the spool: pending or stored (not announced) after the time ran out, or dead-lettered. */
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
  const publisher = createPublisher(config, logger);
  const storage = createStorage(config, logger);
  try {
    // Nothing is received here: no load to yield to, every upload slot is for the backlog.
    const drain = await createDrainStage({ config, spool, storage, publisher, logger, metrics, errors });
    const { drainer } = drain;
    const report = () => {
      const stats = spool.reader.stats();
      onProgress({ uploaded: drainer.uploaded, pending: stats.pending, stored: stats.stored, seconds: (Date.now() - started) / 1000 });
    };
    const progress = setInterval(errors.guard('drain_progress', report), PROGRESS_INTERVAL_MS);
    try {
      drain.start();
      await drain.untilEmpty(started + maxMs);
    } finally {
      clearInterval(progress);
      drain.stop();
    }
    report();
    uploaded = drainer.uploaded;
  } catch (error) {
    await spool.close();
    throw error;
  } finally {
    // Uploads and publishes still in flight are cut; their crashes stay in the spool.
    storage.destroy();
    await publisher?.close();
  }
  const left = (await spool.close((reader) => listCrashes(reader, { oldestFirst: true })))!;
  if (writerDied) throw writerDied;
  const unannounced = (await metrics.unannounced.get()).values[0]?.value ?? 0;
  return { uploaded, unannounced, seconds: (Date.now() - started) / 1000, left };
}
