/**
 * Moves spooled crashes to storage, oldest first, `concurrency` at a time. It reads on its own
 * database connection and writes (deletes, failure records) through the spool writer thread.
 *
 * - I2 delete ⇒ uploaded: a crash is removed from the spool only after `uploadCrash` resolved,
 *   i.e. storage confirmed every object. A kill between upload and delete re-uploads the same
 *   bytes to the same keys on the next start (I3), which is harmless.
 * - Failures of one crash (scope `crash`) back off per crash, persisted in the spool, and after
 *   `maxAttempts` move it to the dead-letter state — kept, logged, counted (I6), never deleted.
 * - Failures of the storage as a whole (scope `storage`) never count against a crash: the drainer
 *   pauses everything with a growing delay and probes with one upload at a time until one
 *   succeeds, so an outage costs one request per backoff interval, not a hot loop.
 * - Acks come first: while reports are being received, it uploads at most
 *   `concurrencyWhileReceiving` crashes at a time (the spool is the buffer; uploading competes
 *   with receiving for the same CPU) — unless the oldest crash due for upload has waited longer than
 *   `yieldMaxMs` or the spool is filling up (`spoolFillingUp`): a burst is absorbed, a sustained
 *   overload is not allowed to grow the backlog without bound.
 */
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { uploadCrash } from './crash-upload.js';
import type { SpooledCrash, SpoolReader } from './spool.js';
import type { SpoolWriter } from './spool-writer.js';
import { StorageError, type CrashStorage } from './storage.js';

const IDLE_RECHECK_MS = 30_000;
/** How soon to look again when uploads are held back while reports are being received. */
const RECEIVING_RECHECK_MS = 100;

/** What the drainer yields to. */
export interface DrainerLoad {
  /** True while reports are being received. */
  receiving(): boolean;
  /** True when the spool holds so much that draining must not wait for receiving to stop. */
  spoolFillingUp(): boolean;
}

export interface DrainerOptions {
  concurrency: number;
  concurrencyWhileReceiving: number;
  /** Longest a pending crash may wait while uploads are held back for receiving. */
  yieldMaxMs: number;
  retry: BackoffPolicy;
  maxAttempts: number;
}

export class Drainer {
  private readonly inflight = new Map<number, Promise<void>>();
  private consecutiveFailures = 0;
  private pausedUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private pumpScheduled = false;
  private stopped = false;
  private emptyWaiters: (() => void)[] = [];
  /** Crashes uploaded and removed since start. */
  uploaded = 0;
  /** Time of the last successful upload (ms), for health checks. */
  lastSuccessAt: number | undefined;

  constructor(
    private readonly spool: SpoolReader,
    private readonly writer: SpoolWriter,
    private readonly storage: CrashStorage,
    private readonly options: DrainerOptions,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly load: DrainerLoad = { receiving: () => false, spoolFillingUp: () => false },
  ) {}

  start(): void {
    this.wake();
  }

  /** Called after new crashes were spooled: look for work now rather than at the next timer. */
  wake(): void {
    if (this.stopped || this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  get uploading(): number {
    return this.inflight.size;
  }

  /** Uploads allowed at once right now. */
  get concurrencyLimit(): number {
    if (this.consecutiveFailures > 0) return 1;
    if (this.load.receiving() && !this.load.spoolFillingUp() && !this.backlogOverdue()) return this.options.concurrencyWhileReceiving;
    return this.options.concurrency;
  }

  private backlogOverdue(): boolean {
    const now = Date.now();
    const oldest = this.spool.oldestDueAt(now);
    return oldest !== undefined && now - oldest > this.options.yieldMaxMs;
  }

  /** True while a storage-wide (or spool) failure has paused draining. */
  get paused(): boolean {
    return this.consecutiveFailures > 0;
  }

  /**
   * Resolves true once no pending crash is left (dead-letter crashes are not drainable), or false
   * when `deadline` (ms since epoch) passes first.
   */
  untilEmpty(deadline: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timeout = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      this.emptyWaiters.push(() => {
        clearTimeout(timeout);
        resolve(true);
      });
      this.wake();
    });
  }

  /**
   * Stops starting uploads. Uploads in flight are abandoned, not awaited: their crashes stay in the
   * spool and are uploaded again on the next start.
   */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    const now = Date.now();
    if (now < this.pausedUntil) {
      this.schedule(this.pausedUntil);
      return;
    }
    const limit = this.concurrencyLimit;
    const slots = limit - this.inflight.size;
    if (slots > 0) {
      let due: SpooledCrash[];
      try {
        due = this.spool.due(now, slots, new Set(this.inflight.keys()));
      } catch (error) {
        this.logger.error({ err: error }, 'reading the spool failed; retrying');
        this.pause();
        return;
      }
      for (const crash of due) this.inflight.set(crash.seq, this.upload(crash));
    }
    if (this.inflight.size > 0) {
      // Held back for receiving: catch the moment it stops rather than the next upload's end.
      if (limit < this.options.concurrency && this.consecutiveFailures === 0) this.schedule(now + RECEIVING_RECHECK_MS);
      return;
    }

    const nextDueAt = this.spool.nextDueAt();
    if (nextDueAt === undefined) {
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const notify of waiters) notify();
      // Crashes can also arrive from outside (an operator's requeue): look again now and then.
      this.schedule(now + IDLE_RECHECK_MS);
    } else {
      this.schedule(Math.max(nextDueAt, now + 10));
    }
  }

  private schedule(at: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.pump(), Math.max(0, at - Date.now()));
  }

  private pause(): number {
    // Uploads that were in flight together fail together: one outage, one step of backoff.
    const now = Date.now();
    if (now < this.pausedUntil) return this.pausedUntil - now;
    this.consecutiveFailures += 1;
    const delay = backoffDelay(this.options.retry, this.consecutiveFailures);
    this.pausedUntil = now + delay;
    this.schedule(this.pausedUntil);
    return delay;
  }

  private async upload(crash: SpooledCrash): Promise<void> {
    const started = performance.now();
    try {
      await uploadCrash(this.storage, crash, this.spool.dumps(crash.seq));
      if (this.stopped) return;
      try {
        await this.writer.remove(crash);
      } catch (error) {
        // Uploaded but still spooled: it is uploaded again later, which rewrites the same bytes.
        const delay = this.pause();
        this.logger.error({ crash_id: crash.crashId, err: error, retry_in_ms: delay }, 'removing an uploaded crash from the spool failed');
        return;
      }
      this.consecutiveFailures = 0;
      this.uploaded += 1;
      this.lastSuccessAt = Date.now();
      const seconds = (performance.now() - started) / 1000;
      this.metrics.uploads.inc({ outcome: 'ok' });
      this.metrics.uploadSeconds.observe(seconds);
      this.logger.info(
        { crash_id: crash.crashId, bytes: crash.bytes, ms: Math.round(seconds * 1000), attempts: crash.attempts + 1 },
        'crash uploaded',
      );
    } catch (error) {
      if (!this.stopped) await this.recordFailure(crash, error);
    } finally {
      this.inflight.delete(crash.seq);
      this.wake();
    }
  }

  private async recordFailure(crash: SpooledCrash, error: unknown): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    const scope = error instanceof StorageError ? error.scope : 'storage';
    if (scope === 'storage') {
      this.metrics.uploads.inc({ outcome: 'storage_error' });
      const delay = this.pause();
      this.logger.warn({ crash_id: crash.crashId, error: message, retry_in_ms: delay }, 'storage unavailable; draining paused');
      return;
    }
    this.metrics.uploads.inc({ outcome: 'crash_error' });
    const attempts = crash.attempts + 1;
    const dead = attempts >= this.options.maxAttempts;
    const delay = backoffDelay(this.options.retry, attempts);
    try {
      await this.writer.recordFailure(crash.seq, { attempts, nextAttemptAt: Date.now() + delay, error: message, dead });
    } catch (spoolError) {
      this.logger.error({ crash_id: crash.crashId, err: spoolError }, 'recording an upload failure failed');
      this.pause();
      return;
    }
    if (dead) {
      this.metrics.deadLettered.inc();
      this.logger.error({ crash_id: crash.crashId, attempts, error: message }, 'crash dead-lettered; kept in the spool');
    } else {
      this.logger.warn({ crash_id: crash.crashId, attempts, error: message, retry_in_ms: delay }, 'crash upload failed');
    }
  }
}
