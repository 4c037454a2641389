/**
 * The drain stage as a process runs it — the collector, or `spool-inspect drain` on a dead node's
 * spool: the drainer uploads pending crashes to storage; with a publisher (PUBLISH_URL) each
 * uploaded crash becomes `stored` and the announcer puts its ID on the processing queue, and only
 * then does it leave the spool (I2, I13). Both are built here, from the same settings, so the two
 * processes cannot drift apart.
 */
import type { BackgroundErrors } from '../background-errors.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { CrashPublisher } from '../queue/publisher.js';
import type { SpoolRuntime } from '../spool/runtime/runtime.js';
import type { CrashStorage } from '../storage/storage.js';
import { Announcer, removeUnannounced } from './announcer.js';
import { Drainer, type DrainerLoad, type DrainerOptions } from './drainer.js';

/** Batches of crash IDs published at once (SQS: 10 per batch). */
const PUBLISH_CONCURRENCY = 4;

export interface DrainStageDeps {
  config: Config;
  spool: SpoolRuntime;
  storage: CrashStorage;
  /** The processing queue (PUBLISH_URL); undefined: nothing is announced. */
  publisher: CrashPublisher | undefined;
  logger: Logger;
  metrics: Metrics;
  errors: BackgroundErrors;
  /** What uploads yield to (the collector's requests); absent: nothing, every upload slot is for the backlog. */
  load?: DrainerLoad;
  /** Without a publisher: crashes left stored by an earlier PUBLISH_URL are removed unannounced, or kept. */
  unannouncedStored: 'remove' | 'keep';
}

export interface DrainStage {
  drainer: Drainer;
  announcer: Announcer | undefined;
  start(): void;
  /** True once nothing is left to upload or announce; false when `deadline` (ms since epoch) passes first. */
  untilEmpty(deadline: number): Promise<boolean>;
  /** Stops starting uploads and publishes; those in flight are abandoned (their crashes stay in the spool). */
  stop(): void;
}

/** The drainer's options from the DRAIN_* settings. */
export function drainerOptions(config: Config): DrainerOptions {
  return {
    concurrency: config.drainConcurrency,
    maxInflightBytes: config.drainInflightMaxBytes,
    concurrencyWhileReceiving: Math.min(config.drainConcurrencyWhileReceiving, config.drainConcurrency),
    yieldMaxMs: config.drainYieldMaxSeconds * 1000,
    retry: { baseMs: config.retryBaseSeconds * 1000, maxMs: config.retryMaxSeconds * 1000 },
    maxAttempts: config.maxAttempts,
  };
}

export async function createDrainStage({ config, spool, storage, publisher, logger, metrics, errors, load, unannouncedStored }: DrainStageDeps): Promise<DrainStage> {
  const options = drainerOptions(config);
  if (!publisher && unannouncedStored === 'remove') {
    const removed = await removeUnannounced(spool.reader, spool.writer, logger);
    if (removed > 0) logger.warn({ removed }, 'crashes stored under an earlier PUBLISH_URL removed from the spool unannounced');
  }
  const announcer =
    publisher &&
    new Announcer({ spool: spool.reader, writer: spool.writer, publisher, options: { concurrency: PUBLISH_CONCURRENCY, retry: options.retry }, logger, metrics, errors });
  const drainer = new Drainer({
    spool: spool.reader,
    writer: spool.writer,
    storage,
    options,
    logger,
    metrics,
    errors,
    ...(load ? { load } : {}),
    afterStored: announcer ? { kind: 'announce', announcer } : { kind: 'remove' },
  });
  return {
    drainer,
    announcer,
    start() {
      drainer.start();
      announcer?.start();
    },
    async untilEmpty(deadline) {
      const uploaded = await drainer.untilEmpty(deadline);
      // The deadline covers announcing too: what is stored and not yet announced stays for the next start.
      return uploaded && (announcer ? await announcer.untilEmpty(deadline) : true);
    },
    stop() {
      drainer.stop();
      announcer?.stop();
    },
  };
}
