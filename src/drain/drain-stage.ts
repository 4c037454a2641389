/**
 * The drain stage as a process runs it — the collector, or `spool-inspect drain` on a dead node's
 * spool: the drainer uploads pending crashes to storage; with a publisher (PUBLISH_URL) each
 * uploaded crash becomes `stored` and the announcer puts its ID on the processing queue, and only
 * then does it leave the spool (I2, I13). Both are built here, from the same settings, so the two
 * processes cannot drift apart.
 */
import type { BackgroundErrors } from '../background-errors.js';
import { CannotStart } from '../cannot-start.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { CrashPublisher } from '../queue/publisher.js';
import { ANNOUNCE_TARGET_KEY, lastCrashSeq, readAnnounceRecord, UNANNOUNCED_THROUGH_KEY } from '../spool/announce-record.js';
import type { SpoolRuntime } from '../spool/runtime/runtime.js';
import type { CrashStorage } from '../storage/storage.js';
import { Announcer, removeUnannounced } from './announcer.js';
import { Drainer, type AfterStored, type DrainerLoad, type DrainerOptions } from './drainer.js';

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

/**
 * Builds the stage once what the spool remembers of announcing agrees with PUBLISH_URL (see
 * settleAnnouncing). Throws CannotStart when it does not: nothing has been touched then.
 */
export async function createDrainStage({ config, spool, storage, publisher, logger, metrics, errors, load }: DrainStageDeps): Promise<DrainStage> {
  const options = drainerOptions(config);
  const unannouncedThrough = await settleAnnouncing(config, spool, publisher, logger, metrics);
  const announcer =
    publisher &&
    new Announcer({ spool: spool.reader, writer: spool.writer, publisher, options: { concurrency: PUBLISH_CONCURRENCY, retry: options.retry, maxAttempts: options.maxAttempts }, logger, metrics, errors });
  const drainer = new Drainer({
    spool: spool.reader,
    writer: spool.writer,
    storage,
    options,
    logger,
    metrics,
    errors,
    ...(load ? { load } : {}),
    afterStored: announcer ? { kind: 'announce', announcer } : removing(unannouncedThrough),
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

const removing = (unannouncedThrough: number | undefined): AfterStored =>
  unannouncedThrough === undefined ? { kind: 'remove' } : { kind: 'remove', unannouncedThrough };

/**
 * The spool remembers that it announces (I13): the first start with a publisher records its queue
 * (spool/announce-record.ts); a later one with another queue says so, and the crashes waiting go
 * there. Without a publisher, a spool that announces — recorded, or holding stored crashes whose
 * IDs wait — is refused: a forgotten PUBLISH_URL must not let them leave unannounced. PUBLISH_URL=none
 * lets them go on purpose: stored ones leave now, pending ones after their upload, each logged and
 * counted (I6). Returns, without a publisher, the highest row number received while announcing.
 */
async function settleAnnouncing(config: Config, spool: SpoolRuntime, publisher: CrashPublisher | undefined, logger: Logger, metrics: Metrics): Promise<number | undefined> {
  const record = readAnnounceRecord(spool.reader.db);
  const { pending, stored } = spool.reader.stats();
  if (publisher) {
    if (record.target !== publisher.description) {
      if (record.target !== undefined) {
        logger.warn({ from: record.target, to: publisher.description, stored, pending }, 'announce queue changed: the crashes waiting are announced on the new one');
      }
      await spool.writer.setMeta(ANNOUNCE_TARGET_KEY, publisher.description);
    }
    return undefined;
  }
  const announcing = record.target !== undefined || stored > 0;
  if (config.publishUrl?.kind !== 'none') {
    if (!announcing) return record.unannouncedThrough;
    throw new CannotStart(
      'PUBLISH_URL',
      `is empty, but this spool announces its crashes${record.target ? ` on ${record.target}` : ''}: ${stored} crashes wait to be announced ` +
        `and ${pending} to be uploaded and announced. Set PUBLISH_URL (that queue or another; the waiting crashes go there), ` +
        'or PUBLISH_URL=none (spool-inspect drain: --no-announce) to let them leave unannounced, each logged',
    );
  }
  let unannouncedThrough = record.unannouncedThrough;
  if (announcing) {
    unannouncedThrough = lastCrashSeq(spool.reader.db);
    await spool.writer.setMeta(UNANNOUNCED_THROUGH_KEY, String(unannouncedThrough));
    await spool.writer.setMeta(ANNOUNCE_TARGET_KEY, null);
    logger.warn({ was: record.target ?? null, stored, pending }, 'PUBLISH_URL=none: this spool announced; the crashes waiting leave it unannounced, each logged');
  }
  await removeUnannounced(spool.reader, spool.writer, logger, metrics);
  return unannouncedThrough;
}
