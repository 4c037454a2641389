/**
 * Announces stored crashes on the processing queue (PUBLISH_URL), the longest waiting first, a
 * batch at a time, a few batches at once. It reads on the drainer's connection and deletes through
 * the spool writer thread.
 *
 * - I13 announced before deleted: a crash leaves the spool only after the queue confirmed its ID;
 *   storage had confirmed every object before it became `stored` (I2, raw crash last). A kill, a
 *   lost confirm or a failed delete publishes it again later: at least once, never lost.
 * - A queue that refuses, hangs or denies is a failure of the queue, not of the crashes: the loop
 *   pauses with a growing delay (at most 5 s, as the drainer probes storage) and tries again;
 *   uploads to storage go on meanwhile (the drainer does not wait for the queue). A batch entry
 *   the queue refuses alone is retried alone, after its own backoff.
 * - Its look for work runs from timers: an error there is reported (BackgroundErrors) and the loop
 *   pauses; it never ends the process (I11).
 */
import type { BackgroundErrors } from '../background-errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { PublishError, type CrashPublisher } from '../queue/publisher.js';
import type { StoredCrash, SpoolReader } from '../spool/runtime/reader.js';
import type { DrainedCrashes } from '../spool/runtime/ports.js';
import type { BackoffPolicy } from './backoff.js';
import { RetrySchedule } from './retry-schedule.js';
import { WorkLoop } from './work-loop.js';

const IDLE_RECHECK_MS = 30_000;

export interface AnnouncerDeps {
  spool: SpoolReader;
  writer: DrainedCrashes;
  publisher: CrashPublisher;
  /** Batches published at once, and the backoff after failures. */
  options: { concurrency: number; retry: BackoffPolicy };
  logger: Logger;
  metrics: Metrics;
  /** Where a failed look for work is reported (I11). */
  errors: BackgroundErrors;
}

export class Announcer {
  private readonly spool: SpoolReader;
  private readonly writer: DrainedCrashes;
  private readonly publisher: CrashPublisher;
  private readonly options: AnnouncerDeps['options'];
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  /** Row numbers (never reused, I7) of the crashes in a batch being published. */
  private readonly inflight = new Set<number>();
  private batches = 0;
  /** Crashes the queue refused one by one, waiting out their backoff. */
  private readonly retries: RetrySchedule;
  /** When to look for work, and the pause after the queue failed as a whole. */
  private readonly loop: WorkLoop;
  /** Crashes announced and removed since start. */
  published = 0;
  /** When the queue last confirmed a publish (ms), for health checks. */
  lastSuccessAt: number | undefined;

  constructor({ spool, writer, publisher, options, logger, metrics, errors }: AnnouncerDeps) {
    this.spool = spool;
    this.writer = writer;
    this.publisher = publisher;
    this.options = options;
    this.logger = logger;
    this.metrics = metrics;
    this.retries = new RetrySchedule(options.retry);
    this.loop = new WorkLoop(() => this.lookForWork(), (error) => errors.report('publish_schedule', error), options.retry);
  }

  start(): void {
    this.wake();
  }

  /** Called once a crash became stored: publish now rather than at the next timer. */
  wake(): void {
    this.loop.wake();
  }

  /** True while the queue as a whole failed and the loop waits before trying again. */
  get paused(): boolean {
    return this.loop.paused;
  }

  /** Resolves true once no stored crash is left, or false when `deadline` (ms since epoch) passes first. */
  untilEmpty(deadline: number): Promise<boolean> {
    return this.loop.untilEmpty(deadline);
  }

  /** Stops starting batches; those in flight are abandoned: their crashes stay stored and are published after the next start. */
  stop(): void {
    this.loop.stop();
  }

  private lookForWork(): void {
    const now = Date.now();
    // While the queue fails as a whole, one batch probes it.
    const concurrency = this.loop.paused ? 1 : this.options.concurrency;
    while (this.batches < concurrency) {
      const batch = this.spool.stored(this.publisher.batchSize, this.retries.notStartable(now, this.inflight));
      if (batch.length === 0) break;
      // A batch that is not full waits for the one in flight: crashes become stored one at a
      // time, and starting each alone made one queue call and one spool commit per crash.
      // Meanwhile the batch fills up; when the queue is idle, a lone crash goes at once.
      if (batch.length < this.publisher.batchSize && this.batches > 0) break;
      this.batches += 1;
      for (const crash of batch) this.inflight.add(crash.seq);
      void this.publishBatch(batch);
    }
    if (this.batches > 0) return;
    if (this.spool.stored(1, new Set()).length === 0) {
      this.loop.empty();
      this.loop.schedule(now + IDLE_RECHECK_MS);
      return;
    }
    // Everything stored waits out a retry delay of its own.
    this.loop.schedule(Math.min(this.retries.nextAt(now) ?? Infinity, now + IDLE_RECHECK_MS));
  }

  private async publishBatch(batch: StoredCrash[]): Promise<void> {
    try {
      let result;
      try {
        result = await this.publisher.publish(batch.map((crash) => crash.crashId));
      } catch (error) {
        if (this.loop.stopped) return;
        const reason = error instanceof PublishError ? error.reason : 'error';
        this.metrics.publishFailures.inc({ reason }, batch.length);
        const delay = this.loop.pause();
        this.logger.warn({ queue: this.publisher.description, crashes: batch.length, reason, error: (error as Error).message, retry_in_ms: delay }, 'publishing to the queue failed; retrying');
        return;
      }
      if (result.published.length > 0 && this.loop.paused) {
        this.logger.info({ queue: this.publisher.description }, 'the queue answers again; publishing resumed');
        this.loop.resume();
      }
      const bySeq = new Map(batch.map((crash) => [crash.crashId, crash]));
      await Promise.all(result.published.map((crashId) => this.confirmed(bySeq.get(crashId)!)));
      for (const { crashId, reason } of result.failed) this.refused(bySeq.get(crashId)!, reason);
    } finally {
      this.batches -= 1;
      for (const crash of batch) this.inflight.delete(crash.seq);
      this.wake();
    }
  }

  /** The queue confirmed the crash's ID: it leaves the spool (I13). */
  private async confirmed(crash: StoredCrash): Promise<void> {
    this.retries.forget(crash.seq);
    this.lastSuccessAt = Date.now();
    this.metrics.published.inc();
    let removed: boolean;
    try {
      removed = await this.writer.remove(crash);
    } catch (error) {
      // Announced but still spooled: announced again later (a duplicate, never a loss).
      const delay = this.loop.pause();
      this.logger.error({ crash_id: crash.crashId, err: error, retry_in_ms: delay }, 'removing a published crash from the spool failed');
      return;
    }
    this.published += 1;
    this.logger.info({ crash_id: crash.crashId, waited_ms: Date.now() - crash.storedAt, removed }, 'crash published');
  }

  private refused(crash: StoredCrash, reason: string): void {
    const { delay } = this.retries.failed(crash.seq);
    this.metrics.publishFailures.inc({ reason: 'rejected' });
    this.logger.warn({ crash_id: crash.crashId, reason, retry_in_ms: delay }, 'the queue refused this crash; retrying it');
  }
}

/**
 * Crashes stored while PUBLISH_URL was set, left behind when it is empty now: they are in storage
 * and nobody is to be told, so they leave the spool, each one logged (I6). Returns how many.
 */
export async function removeUnannounced(spool: SpoolReader, writer: DrainedCrashes, logger: Logger): Promise<number> {
  let removed = 0;
  for (let batch = spool.stored(500, new Set()); batch.length > 0; batch = spool.stored(500, new Set())) {
    for (const crash of batch) {
      await writer.remove(crash);
      logger.warn({ crash_id: crash.crashId }, 'stored crash removed unannounced: PUBLISH_URL is empty now');
      removed += 1;
    }
  }
  return removed;
}
