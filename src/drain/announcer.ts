/**
 * Announces stored crashes on the processing queue (PUBLISH_URL), the longest waiting first, a
 * batch at a time, a few batches at once. It reads on the drainer's connection and writes (removes,
 * failure records) through the spool writer thread.
 *
 * - I13 announced before deleted: a crash leaves the spool only after the queue confirmed its ID;
 *   storage had confirmed every object before it became `stored` (I2, raw crash last). A kill, a
 *   lost confirm or a failed delete publishes it again later: at least once, never lost.
 * - Every answer is held against what was sent (publish-answer.ts): an entry never sent is logged
 *   and ignored; an entry in neither list is tried again; an answer that accounts for no entry, or
 *   cannot be read, is a failure of the whole call.
 * - A queue that refuses, hangs, denies or answers nonsense fails as a whole: the loop pauses with a
 *   growing delay (at most 5 s, as the drainer probes storage) and tries again, one batch at a time;
 *   uploads go on meanwhile (the drainer does not wait for the queue). So does a batch of which
 *   every entry failed by the queue's own trouble (returned as unroutable, nacked).
 * - One crash the queue refuses gets the upload rules: refused as its own fault (SQS
 *   `SenderFault`), its attempts are counted on it in the spool and it is dead-lettered after
 *   DRAIN_MAX_ATTEMPTS, kept stored (I6); refused by the queue's trouble while others went through,
 *   it waits out its own backoff in memory (RetrySchedule), never counted. Either way the error is
 *   written on the crash, so `spool-inspect` tells why it waits.
 * - Its look for work runs from timers, and each publish is a promise with a catch: an error there
 *   is reported (BackgroundErrors) and the loop pauses; it never ends the process (I11).
 */
import type { BackgroundErrors } from '../background-errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { PublishError, type CrashPublisher, type PublishFailure, type PublishResult } from '../queue/publisher.js';
import type { StoredCrash, SpoolReader } from '../spool/runtime/reader.js';
import type { DrainedCrashes } from '../spool/runtime/ports.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { accountFor, type EntryRefusal } from './publish-answer.js';
import { RetrySchedule } from './retry-schedule.js';
import { LoopedStage } from './work-loop.js';

const IDLE_RECHECK_MS = 30_000;
/**
 * How long a batch that is not full may wait for more crashes while the queue is idle: crashes
 * become stored one at a time, and a call per crash cost the queue server (and the cores it shares)
 * more than the drain could spare. Nothing waits longer for it than this.
 */
export const BATCH_LINGER_MS = 100;

export interface AnnouncerDeps {
  spool: SpoolReader;
  writer: DrainedCrashes;
  publisher: CrashPublisher;
  /** Batches published at once, the backoff after failures, and the refusals of one crash before it is dead-lettered. */
  options: { concurrency: number; retry: BackoffPolicy; maxAttempts: number };
  logger: Logger;
  metrics: Metrics;
  /** Where a failed look for work is reported (I11). */
  errors: BackgroundErrors;
}

export class Announcer extends LoopedStage {
  private readonly spool: SpoolReader;
  private readonly writer: DrainedCrashes;
  private readonly publisher: CrashPublisher;
  private readonly options: AnnouncerDeps['options'];
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly errors: BackgroundErrors;
  /** Row numbers (never reused, I7) of the crashes in a batch being published. */
  private readonly inflight = new Set<number>();
  private batches = 0;
  /** Crashes that became stored since the spool was last read (crashStored). */
  private storedSinceLook = 0;
  /** A batch that is not full waits for more (BATCH_LINGER_MS); the loop is scheduled to look again. */
  private lingering = false;
  /** Crashes the queue did not take by its own trouble while others went through, waiting out their backoff. */
  private readonly retries: RetrySchedule;
  /** Crashes announced and removed since start. */
  published = 0;
  /** When the queue last confirmed a publish (ms), for health checks. */
  lastSuccessAt: number | undefined;

  constructor({ spool, writer, publisher, options, logger, metrics, errors }: AnnouncerDeps) {
    super('publish_schedule', errors, options.retry);
    this.spool = spool;
    this.writer = writer;
    this.publisher = publisher;
    this.options = options;
    this.logger = logger;
    this.metrics = metrics;
    this.errors = errors;
    this.retries = new RetrySchedule(options.retry);
  }

  /**
   * A crash became stored. While a batch is in flight, fewer crashes than a batch would only wait
   * for it (lookForWork), so the spool is read again when it ends, or once a full batch is there:
   * a read per crash stored was ~0.3 ms of the event loop each (a drain of 2,000: 0.55 s).
   */
  crashStored(): void {
    this.storedSinceLook += 1;
    if ((this.batches > 0 || this.lingering) && this.storedSinceLook < this.publisher.batchSize) return;
    this.wake();
  }

  protected lookForWork(): void {
    const now = Date.now();
    this.storedSinceLook = 0;
    this.lingering = false;
    // While the queue fails as a whole, one batch probes it.
    const concurrency = this.loop.paused ? 1 : this.options.concurrency;
    while (this.batches < concurrency) {
      const batch = this.spool.stored(now, this.publisher.batchSize, this.retries.notStartable(now, this.inflight));
      if (batch.length === 0) break;
      // A batch that is not full waits for the one in flight: crashes become stored one at a
      // time, and starting each alone made one queue call and one spool commit per crash.
      // Meanwhile the batch fills up; when the queue is idle, one that is not full goes once its
      // oldest crash has waited BATCH_LINGER_MS (and a crash that waited out a retry, at once).
      if (batch.length < this.publisher.batchSize && this.batches > 0) break;
      const oldest = Math.min(...batch.map((crash) => crash.storedAt));
      if (batch.length < this.publisher.batchSize && now - oldest < BATCH_LINGER_MS) {
        this.lingering = true;
        this.loop.schedule(oldest + BATCH_LINGER_MS);
        return;
      }
      this.batches += 1;
      for (const crash of batch) this.inflight.add(crash.seq);
      this.publishBatch(batch).catch((error: unknown) => {
        this.errors.report('publish_batch', error, { crashes: batch.length });
        if (!this.loop.stopped) this.loop.pause();
      });
    }
    if (this.batches > 0) return;
    const nextDueAt = this.spool.nextStoredDueAt();
    if (nextDueAt === undefined) {
      this.loop.empty();
      this.loop.schedule(now + IDLE_RECHECK_MS);
      return;
    }
    // Everything stored waits out a retry delay: its own in memory, or one written on it.
    const wakeAt = Math.min(nextDueAt > now ? nextDueAt : Infinity, this.retries.nextAt(now) ?? Infinity, now + IDLE_RECHECK_MS);
    this.loop.schedule(Math.max(wakeAt, now + 10));
  }

  private async publishBatch(batch: StoredCrash[]): Promise<void> {
    try {
      let result: PublishResult;
      try {
        result = await this.publisher.publish(batch.map((crash) => crash.crashId));
      } catch (error) {
        if (this.loop.stopped) return;
        await this.callFailed(batch, error instanceof PublishError ? error.reason : 'error', (error as Error).message);
        return;
      }
      const answer = accountFor(batch, result);
      if (answer.unknown.length > 0) {
        this.logger.warn({ queue: this.publisher.description, entries: answer.unknown.slice(0, 10), crashes: batch.length }, 'the queue answered for entries never sent; ignored');
      }
      if (answer.accountsForNone) {
        if (this.loop.stopped) return;
        await this.callFailed(batch, 'malformed', `the queue's answer accounts for none of the ${batch.length} crash IDs sent`);
        return;
      }
      if (answer.confirmed.length > 0 && this.loop.paused) {
        this.logger.info({ queue: this.publisher.description }, 'the queue answers again; publishing resumed');
        this.loop.resume();
      }
      if (answer.confirmed.length === 0 && answer.refused.every((refusal) => refusal.scope === 'queue')) {
        // Nothing went through, by the queue's own trouble (every message returned or nacked): the queue is down, not these crashes.
        if (this.loop.stopped) return;
        for (const { reason } of answer.refused) this.metrics.publishFailures.inc({ reason });
        const { reason, error } = answer.refused[0]!;
        await this.callFailed(batch, undefined, `${reason}: ${error}`);
        return;
      }
      await Promise.all([...answer.confirmed.map((crash) => this.confirmed(crash)), ...answer.refused.map((refusal) => this.refused(refusal))]);
    } finally {
      this.batches -= 1;
      for (const crash of batch) this.inflight.delete(crash.seq);
      this.wake();
    }
  }

  /**
   * The queue failed as a whole, not the crashes: pause, count (by `reason`, unless counted per
   * entry already), and say so on each crash of the batch.
   */
  private async callFailed(batch: StoredCrash[], reason: PublishFailure | undefined, message: string): Promise<void> {
    if (reason) this.metrics.publishFailures.inc({ reason }, batch.length);
    const delay = this.loop.pause();
    this.logger.warn({ queue: this.publisher.description, crashes: batch.length, reason, error: message, retry_in_ms: delay }, 'publishing to the queue failed; retrying');
    await Promise.all(batch.map((crash) => this.note(crash, message, crash.attempts, Date.now() + delay, false)));
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

  /** One crash the queue did not take: counted toward its dead letter when the queue says it is the crash's fault. */
  private async refused({ crash, error, reason, scope }: EntryRefusal<StoredCrash>): Promise<void> {
    this.metrics.publishFailures.inc({ reason });
    if (scope === 'queue') {
      const { delay } = this.retries.failed(crash.seq);
      this.logger.warn({ crash_id: crash.crashId, reason, error, retry_in_ms: delay }, 'the queue did not take this crash; retrying it');
      await this.note(crash, error, crash.attempts, Date.now() + delay, false);
      return;
    }
    this.retries.forget(crash.seq);
    const attempts = crash.attempts + 1;
    const dead = attempts >= this.options.maxAttempts;
    const delay = backoffDelay(this.options.retry, attempts);
    const found = await this.note(crash, error, attempts, Date.now() + delay, dead);
    if (!found) return;
    if (dead) {
      this.metrics.deadLettered.inc();
      this.logger.error({ crash_id: crash.crashId, attempts, reason, error, stage: 'announce' }, 'crash dead-lettered; kept in the spool (in storage, never announced)');
    } else {
      this.logger.warn({ crash_id: crash.crashId, attempts, reason, error, retry_in_ms: delay }, 'the queue refused this crash; retrying it');
    }
  }

  /**
   * Writes the failure on the stored crash (its last error, next attempt, attempts), so
   * `spool-inspect` tells why it waits. False when the crash left the spool or is no longer stored
   * meanwhile (an operator's purge); a spool that cannot take the note changes nothing.
   */
  private async note(crash: StoredCrash, error: string, attempts: number, nextAttemptAt: number, dead: boolean): Promise<boolean> {
    let found: boolean;
    try {
      found = await this.writer.recordFailure(crash, { stage: 'announce', attempts, nextAttemptAt, error, dead });
    } catch (spoolError) {
      this.logger.warn({ crash_id: crash.crashId, err: spoolError }, 'noting a publish failure on the crash failed');
      return false;
    }
    if (!found) this.retries.forget(crash.seq);
    return found;
  }
}

/**
 * Crashes stored (in storage, their IDs waiting) on a spool whose announcing an operator let go
 * (PUBLISH_URL=none): they leave the spool, each logged and counted (I6).
 */
export async function removeUnannounced(spool: SpoolReader, writer: DrainedCrashes, logger: Logger, metrics: Metrics): Promise<void> {
  for (let batch = storedNow(spool); batch.length > 0; batch = storedNow(spool)) {
    for (const crash of batch) {
      if (!(await writer.remove(crash))) continue;
      metrics.unannounced.inc();
      logger.warn({ crash_id: crash.crashId }, 'stored crash removed unannounced');
    }
  }
}

/** Stored crashes, whatever retry delay is written on them. */
const storedNow = (spool: SpoolReader) => spool.stored(Number.MAX_SAFE_INTEGER, 500, new Set());
