/**
 * Moves spooled crashes to storage, oldest first, `concurrency` at a time. It reads on its own
 * database connection and writes (deletes, failure records) through the spool writer thread.
 *
 * Why one file of ~430 lines: what to start next, the per-crash retry state and the storage-wide
 * pause all read and write the same in-flight set and retry map; each rule below is a few lines of
 * this one scheduler, and split apart they would pass its internals back and forth. What is apart:
 * the timing it shares with the announcer (work-loop.ts) and the pure parts (backoff.ts,
 * upload-share.ts, crash-upload.ts).
 *
 * - I2 delete ⇒ uploaded: a crash is removed from the spool (or, when publishing, becomes
 *   `stored` and loses its dumps) only after `uploadCrash` resolved, i.e. storage confirmed every
 *   object. A kill between upload and delete re-uploads the same
 *   bytes to the same keys on the next start (I3), which is harmless.
 * - I7 a crash is named by row number and crash ID in every read and write (the in-flight set is
 *   keyed by row numbers, which are never reused): a crash an operator purges mid-upload is
 *   uploaded whole or not at all, and its remove or failure record touches no other crash.
 * - Its look for work runs from timers: a spool read failing there is logged and counted
 *   (BackgroundErrors) and retried after a pause; it never ends the process.
 * - Failures of one crash (scope `crash`) back off per crash, persisted in the spool, and after
 *   `maxAttempts` move it to the dead-letter state — kept, logged, counted (I6), never deleted.
 * - Failures of the storage (scope `storage`: a 5xx, a timeout, a refused connection) never count
 *   against a crash. One such failure is retried for that crash alone, after a jittered backoff
 *   kept in memory, while other crashes go on uploading: partial failure (S3 answers `503 SlowDown`
 *   routinely) is not an outage; concurrency follows the share of recent requests that succeed.
 *   Only when a failure says so by itself (connection refused, no such bucket, bad credentials) or
 *   every recent request went unanswered (timeouts) does the drainer pause everything, probing with
 *   one upload at a time with a growing delay (at most 5 s); the first success resumes full concurrency. A
 *   storage that answers every request with an error gets one request per retry base interval.
 * - A retried crash uploads only the objects storage has not confirmed yet, raw crash still last.
 * - Acks come first: while reports are being received, it uploads only as many crashes at a time
 *   as the event loop has room for (`uploadsWhileReceiving`, from `concurrencyWhileReceiving` up;
 *   the spool is the buffer; uploading competes with receiving for the same CPU) — unless the oldest crash due for upload has waited longer than
 *   `yieldMaxMs` or the spool is filling up (`spoolFillingUp`): a burst is absorbed, a sustained
 *   overload is not allowed to grow the backlog without bound.
 */
import type { BackgroundErrors } from '../background-errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { RetrySchedule } from './retry-schedule.js';
import { LoopedStage } from './work-loop.js';
import { uploadCrash } from './crash-upload.js';
import type { SpooledCrash } from '../spool/schema.js';
import type { SpoolReader } from '../spool/runtime/reader.js';
import type { DrainedCrashes } from '../spool/runtime/ports.js';
import { StorageError, type CrashStorage } from '../storage/storage.js';

const IDLE_RECHECK_MS = 30_000;
/** Recent storage requests looked at to tell an outage from partial failure. */
const OUTCOME_WINDOW = 20;
/** Fewer recent requests than this say nothing about the storage as a whole. */
const OUTAGE_MIN_SAMPLES = 10;
/** How soon to look again when uploads are held back while reports are being received. */
const RECEIVING_RECHECK_MS = 100;
/** While uploads are paced for receiving (DrainerLoad.uploadsPaced): one start per this long. */
const PACED_START_MS = 100;
/** How a storage request ended: confirmed, answered with an error (a 5xx), or not answered at all. */
type RequestOutcome = 'ok' | 'error-answer' | 'no-answer';

/** What the drainer yields to. */
export interface DrainerLoad {
  /** True while reports are being received. */
  receiving(): boolean;
  /** Uploads allowed while receiving (upload-share.ts); `concurrencyWhileReceiving` when absent. */
  uploadsWhileReceiving?(): number;
  /** True when uploads while receiving should also start at most one per PACED_START_MS. */
  uploadsPaced?(): boolean;
  /** True when the spool holds so much that draining must not wait for receiving to stop. */
  spoolFillingUp(): boolean;
}

export interface DrainerOptions {
  concurrency: number;
  /** Spooled bytes of the crashes uploading at once (their dumps are in memory); one crash always goes. */
  maxInflightBytes: number;
  concurrencyWhileReceiving: number;
  /** Longest a pending crash may wait while uploads are held back for receiving. */
  yieldMaxMs: number;
  retry: BackoffPolicy;
  maxAttempts: number;
}

/** What the drainer does with a crash once storage confirmed every object of it. */
export type AfterStored =
  /**
   * Nobody is to be told: the crash leaves the spool (I2). Crashes up to row `unannouncedThrough`
   * were received while the spool announced (PUBLISH_URL=none since): each is logged and counted
   * as it leaves unannounced (I6).
   */
  | { kind: 'remove'; unannouncedThrough?: number }
  /** Publishing (PUBLISH_URL): the crash becomes `stored`, and the announcer is woken to announce it (I13). */
  | { kind: 'announce'; announcer: { crashStored(): void } };

export interface DrainerDeps {
  /** The drainer's own reading connection. */
  spool: SpoolReader;
  /** Where removes and failure records go (the spool writer thread). */
  writer: DrainedCrashes;
  storage: CrashStorage;
  options: DrainerOptions;
  logger: Logger;
  metrics: Metrics;
  /** What it yields to; absent: nothing (it drains at DRAIN_CONCURRENCY). */
  load?: DrainerLoad;
  afterStored: AfterStored;
  /** Where a failed look for work is reported (I11). */
  errors: BackgroundErrors;
}

export class Drainer extends LoopedStage {
  private readonly inflight = new Map<number, Promise<void>>();
  private inflightBytes = 0;
  /** Outcomes of the last storage requests, newest last: confirmed, an error answer, or no answer. */
  private readonly recentOutcomes: RequestOutcome[] = [];
  /** Crashes waiting out a backoff after a storage failure of their own. */
  private readonly retries: RetrySchedule;
  /** Keys storage has confirmed for crashes not yet removed, so a retry does not send them again. */
  private readonly confirmed = new Map<number, Set<string>>();
  private lastPacedStartAt = 0;
  /** Crashes whose every object storage confirmed since start (removed, or stored to be announced). */
  uploaded = 0;
  /** Time of the last successful upload (ms), for health checks. */
  lastSuccessAt: number | undefined;
  private readonly spool: SpoolReader;
  private readonly writer: DrainedCrashes;
  private readonly options: DrainerOptions;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly load: DrainerLoad;
  private readonly afterStored: AfterStored;

  constructor({ spool, writer, storage, options, logger, metrics, load, afterStored, errors }: DrainerDeps) {
    // A spool read failing in a look for work (SQLITE_BUSY behind an operator's long transaction,
    // a disk gone) is reported, and the loop looks again after a pause.
    super('drain_schedule', errors, options.retry);
    this.afterStored = afterStored;
    this.retries = new RetrySchedule(options.retry);
    this.spool = spool;
    this.writer = writer;
    this.options = options;
    this.logger = logger;
    this.metrics = metrics;
    this.load = load ?? { receiving: () => false, spoolFillingUp: () => false };
    this.requests = {
      description: storage.description,
      put: async (...args) => {
        try {
          await storage.put(...args);
        } catch (error) {
          this.recordOutcome(error instanceof StorageError && error.answered ? 'error-answer' : 'no-answer');
          throw error;
        }
        this.recordOutcome('ok');
      },
      checkReachable: () => storage.checkReachable(),
      checkReadWrite: () => storage.checkReadWrite(),
      destroy: () => storage.destroy(),
    };
  }

  /** The storage, with every request's outcome recorded: the evidence for "storage-wide". */
  private readonly requests: CrashStorage;

  get uploading(): number {
    return this.inflight.size;
  }

  /**
   * Uploads allowed at once right now: one probe while storage is down; otherwise scaled to the
   * share of recent requests that succeeded (four times that share of DRAIN_CONCURRENCY, so up to
   * three in four failing keeps it all, and at least two), which keeps a mostly failing storage
   * from being hammered while its successes still make progress; and held back while reports are
   * being received.
   */
  get concurrencyLimit(): number {
    if (this.loop.paused) return 1;
    const wanted = this.heldForReceiving()
      ? Math.min(this.options.concurrency, this.load.uploadsWhileReceiving?.() ?? this.options.concurrencyWhileReceiving)
      : this.options.concurrency;
    if (this.recentOutcomes.length < OUTAGE_MIN_SAMPLES) return wanted;
    const scaled = Math.max(2, Math.ceil(this.options.concurrency * (1 - this.recentFailureRatio) * 4));
    return Math.min(wanted, scaled);
  }

  private heldForReceiving(): boolean {
    return this.load.receiving() && !this.load.spoolFillingUp() && !this.backlogOverdue();
  }

  private backlogOverdue(): boolean {
    const now = Date.now();
    const oldest = this.spool.oldestDueAt(now);
    return oldest !== undefined && now - oldest > this.options.yieldMaxMs;
  }

  /** Crashes waiting to be retried after a storage failure of their own. */
  get retrying(): number {
    return this.retries.size;
  }

  /** Share of the recent storage requests that failed (0 when none were made). */
  get recentFailureRatio(): number {
    if (this.recentOutcomes.length === 0) return 0;
    return this.recentOutcomes.filter((outcome) => outcome !== 'ok').length / this.recentOutcomes.length;
  }

  protected lookForWork(): void {
    const now = Date.now();
    const limit = this.concurrencyLimit;
    let slots = limit - this.inflight.size;
    const paced = slots > 0 && !this.loop.paused && (this.load.uploadsPaced?.() ?? false) && this.heldForReceiving();
    if (paced) {
      const nextStartAt = this.lastPacedStartAt + PACED_START_MS;
      if (now < nextStartAt) {
        this.loop.schedule(nextStartAt);
        return;
      }
      slots = 1;
      this.lastPacedStartAt = now;
    }
    if (slots > 0) {
      for (const crash of this.spool.due(now, slots, this.retries.notStartable(now, this.inflight.keys()))) {
        // Oldest first: a crash that does not fit now waits for room rather than being overtaken.
        if (this.inflight.size > 0 && this.inflightBytes + crash.bytes > this.options.maxInflightBytes) break;
        this.inflightBytes += crash.bytes;
        this.inflight.set(crash.seq, this.upload(crash));
      }
    }
    if (this.inflight.size > 0) {
      // Held back for receiving: catch the moment it stops rather than the next upload's end.
      if (limit < this.options.concurrency && !this.loop.paused) this.loop.schedule(now + RECEIVING_RECHECK_MS);
      else {
        const retryAt = this.retries.nextAt(now);
        if (retryAt !== undefined) this.loop.schedule(retryAt);
      }
      return;
    }

    const nextDueAt = this.spool.nextDueAt();
    if (nextDueAt === undefined) {
      this.loop.empty();
      // Crashes can also arrive from outside (an operator's requeue): look again now and then.
      this.loop.schedule(now + IDLE_RECHECK_MS);
      return;
    }
    // Due crashes may all be waiting out their own retry delay: wake for whichever comes first.
    const wakeAt = Math.min(nextDueAt > now ? nextDueAt : Infinity, this.retries.nextAt(now) ?? Infinity);
    this.loop.schedule(Number.isFinite(wakeAt) ? Math.max(wakeAt, now + 10) : now + 10);
  }

  private recordOutcome(outcome: RequestOutcome): void {
    this.recentOutcomes.push(outcome);
    if (this.recentOutcomes.length > OUTCOME_WINDOW) this.recentOutcomes.shift();
    if (outcome === 'ok' && this.loop.paused && !this.loop.stopped) {
      // Storage answers again: full concurrency from the next look on.
      this.logger.info('storage answers again; draining at full concurrency');
      this.loop.resume();
    }
  }

  /** The crash is done with (removed or dead-lettered): forget its retry state. */
  private forget(seq: number): void {
    this.retries.forget(seq);
    this.confirmed.delete(seq);
  }

  private async upload(crash: SpooledCrash): Promise<void> {
    const started = performance.now();
    let confirmed = this.confirmed.get(crash.seq);
    if (!confirmed) this.confirmed.set(crash.seq, (confirmed = new Set()));
    try {
      const dumps = await this.spool.dumps(crash);
      if (!dumps) {
        this.forget(crash.seq);
        this.logger.warn({ crash_id: crash.crashId }, 'crash left the spool before its upload (purged); nothing of it uploaded');
        return;
      }
      await uploadCrash(this.requests, crash, dumps, confirmed);
      if (this.loop.stopped) return;
      let removed: boolean;
      try {
        removed =
          this.afterStored.kind === 'announce'
            ? await this.writer.markStored({ ...crash, rawCrashBytes: Buffer.byteLength(crash.rawCrashJson) })
            : await this.writer.remove(crash);
      } catch (error) {
        // Uploaded but still spooled: it is uploaded again later, which rewrites the same bytes.
        const delay = this.loop.pause();
        this.logger.error({ crash_id: crash.crashId, err: error, retry_in_ms: delay }, 'removing an uploaded crash from the spool failed');
        return;
      }
      this.forget(crash.seq);
      this.lastSuccessAt = Date.now();
      const seconds = (performance.now() - started) / 1000;
      this.metrics.uploads.inc({ outcome: 'ok' });
      this.metrics.uploadSeconds.observe(seconds);
      if (!removed) {
        this.logger.warn({ crash_id: crash.crashId }, 'crash left the spool while it was being uploaded (purged); nothing else removed');
        return;
      }
      this.uploaded += 1;
      this.logger.info(
        { crash_id: crash.crashId, bytes: crash.bytes, ms: Math.round(seconds * 1000), attempts: crash.attempts + 1 },
        'crash uploaded',
      );
      if (this.afterStored.kind === 'remove' && crash.seq <= (this.afterStored.unannouncedThrough ?? 0)) {
        this.metrics.unannounced.inc();
        this.logger.warn({ crash_id: crash.crashId }, 'crash removed unannounced');
      }
      if (this.afterStored.kind === 'announce') this.afterStored.announcer.crashStored();
    } catch (error) {
      if (!this.loop.stopped) await this.recordFailure(crash, error);
    } finally {
      this.inflight.delete(crash.seq);
      this.inflightBytes -= crash.bytes;
      this.wake();
    }
  }

  /**
   * A failure of the storage is written on the crash as its last error and next attempt, with its
   * attempts unchanged (it never counts toward dead-letter), so `spool-inspect` tells what the
   * drainer knows. A crash gone meanwhile, or a spool that cannot take the note, changes nothing.
   */
  private async noteStorageFailure(crash: SpooledCrash, message: string, nextAttemptAt: number): Promise<void> {
    try {
      await this.writer.recordFailure(crash, { stage: 'upload', attempts: crash.attempts, nextAttemptAt, error: message, dead: false });
    } catch (spoolError) {
      this.logger.warn({ crash_id: crash.crashId, err: spoolError }, 'noting a storage failure on the crash failed');
    }
  }

  private async recordFailure(crash: SpooledCrash, error: unknown): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    const scope = error instanceof StorageError ? error.scope : 'storage';
    if (scope === 'storage') {
      this.metrics.uploads.inc({ outcome: 'storage_error' });
      const allFailed = this.recentOutcomes.length >= OUTAGE_MIN_SAMPLES && this.recentFailureRatio === 1;
      if ((error instanceof StorageError && error.outage) || (allFailed && !this.recentOutcomes.includes('error-answer'))) {
        const delay = this.loop.pause();
        this.logger.warn({ crash_id: crash.crashId, error: message, retry_in_ms: delay }, 'storage unavailable; draining paused');
        await this.noteStorageFailure(crash, message, Date.now() + delay);
        return;
      }
      if (allFailed) {
        // Storage answers, but only with errors: one request per retry base, no growing pause,
        // so the first request it takes again is soon made.
        this.loop.holdFor(this.options.retry.baseMs);
      }
      const { delay } = this.retries.failed(crash.seq);
      this.logger.warn(
        { crash_id: crash.crashId, error: message, retry_in_ms: delay, confirmed_objects: this.confirmed.get(crash.seq)?.size ?? 0 },
        'storage request failed; retrying this crash',
      );
      await this.noteStorageFailure(crash, message, Date.now() + delay);
      return;
    }
    this.metrics.uploads.inc({ outcome: 'crash_error' });
    const attempts = crash.attempts + 1;
    const dead = attempts >= this.options.maxAttempts;
    const delay = backoffDelay(this.options.retry, attempts);
    let found: boolean;
    try {
      found = await this.writer.recordFailure(crash, { stage: 'upload', attempts, nextAttemptAt: Date.now() + delay, error: message, dead });
    } catch (spoolError) {
      this.logger.error({ crash_id: crash.crashId, err: spoolError }, 'recording an upload failure failed');
      this.loop.pause();
      return;
    }
    if (!found) {
      this.forget(crash.seq);
      this.logger.warn({ crash_id: crash.crashId, error: message }, 'crash left the spool while its upload failed (purged); nothing else changed');
      return;
    }
    if (dead) {
      this.forget(crash.seq);
      this.metrics.deadLettered.inc();
      this.logger.error({ crash_id: crash.crashId, attempts, error: message }, 'crash dead-lettered; kept in the spool');
    } else {
      this.logger.warn({ crash_id: crash.crashId, attempts, error: message, retry_in_ms: delay }, 'crash upload failed');
    }
  }
}
