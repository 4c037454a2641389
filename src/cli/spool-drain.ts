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
import { CannotStart } from '../cannot-start.js';
import { createPublisher } from '../queue/create-publisher.js';
import { PublishError } from '../queue/publisher.js';
import { StorageCheckFailed } from '../storage/storage.js';
import { within } from '../within.js';
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
/** How long the settings check before a drain waits for storage or the queue to answer. */
const CHECK_MS = 3000;

/** Uploads every pending crash of `config.spoolDir` until none is left or `maxMs` passed. Throws SpoolLocked while a collector holds the spool. */
export async function drainSpool(config: Config, logger: Logger, maxMs: number, onProgress: (progress: DrainProgress) => void): Promise<DrainOutcome> {
  const started = Date.now();
  await checkSettings(config, logger);
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

/**
 * Before the spool is touched: storage and the queue as configured, tried once. A setting that is
 * wrong (credentials missing or refused, no such bucket or queue) throws CannotStart, exit 2; a
 * dependency that does not answer is left to the drain's own retries until --max-time (exit 1).
 */
async function checkSettings(config: Config, logger: Logger): Promise<void> {
  // Each tried as long as connecting may take: a dependency that hangs is the drain's to wait for, within --max-time.
  const bound = async (check: Promise<unknown>, what: string) => {
    if ((await within(check, CHECK_MS)) === 'timeout') logger.warn(`${what} does not answer; the drain retries it until --max-time`);
  };
  const storage = createStorage(config, logger);
  try {
    await bound(storage.checkReadWrite(), 'storage');
  } catch (error) {
    if (error instanceof StorageCheckFailed && error.kind === 'setting') throw new CannotStart('STORAGE_URL', `${error.message}; nothing was drained`);
    logger.warn({ err: error }, 'storage does not answer; draining retries it until --max-time');
  } finally {
    storage.destroy();
  }
  const publisher = createPublisher(config, logger);
  try {
    if (publisher) await bound(publisher.checkReachable(), 'the queue');
  } catch (error) {
    if (error instanceof PublishError && (error.reason === 'denied' || error.reason === 'missing')) {
      throw new CannotStart('PUBLISH_URL', `${publisher!.description}: ${error.message}; nothing was drained`);
    }
    logger.warn({ err: error }, 'the queue does not answer; announcing retries it until --max-time');
  } finally {
    await publisher?.close();
  }
}
