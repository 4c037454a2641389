/**
 * Where errors of work that runs outside any request go: timers, intervals, thread and stream
 * events. Thrown there, an error would escape as an uncaught exception and end the process, so
 * each such callback reports it here instead: logged at error level with its task and reason (as a
 * request's unexpected error is) and counted in `crashspool_background_errors_total{task}`. The
 * task then goes on at its next run (every one listed is periodic or retried), unless it escalates
 * on purpose: a spool writer thread that dies still ends the process (main.ts), as the spool can
 * take no crash without it.
 */
import type { Logger } from './logger.js';

export type BackgroundTask =
  /** The drainer's look for work (spool reads of the due crashes and due times). */
  | 'drain_schedule'
  /** The announcer's look for stored crashes to announce. */
  | 'publish_schedule'
  /** A publish of one batch that threw where nothing should (announcer.ts); the loop pauses. */
  | 'publish_batch'
  /** Re-reading the spool's byte count (collector/spool-upkeep.ts). */
  | 'spool_usage_resync'
  /** Following the event loop's and cores' load for uploads while receiving (collector/load-signals.ts). */
  | 'upload_share'
  /** Removing expired dedup index entries (collector/spool-upkeep.ts). */
  | 'dedup_expiry'
  /** A batch of writes the writer thread could not commit as one; it retried them apart. */
  | 'spool_write_batch'
  /** A background WAL checkpoint (spool/runtime/checkpointer-thread.ts). */
  | 'spool_checkpoint'
  /** A storage or queue probe's timer (health/heartbeat.ts). */
  | 'health_probe'
  /** spool-inspect drain's progress line. */
  | 'drain_progress';

export interface BackgroundErrorCounter {
  inc(labels: { task: BackgroundTask }): void;
}

export class BackgroundErrors {
  constructor(
    private readonly logger: Logger,
    private readonly counter: BackgroundErrorCounter,
  ) {}

  report(task: BackgroundTask, error: unknown, context: Record<string, unknown> = {}): void {
    this.counter.inc({ task });
    this.logger.error({ task, err: error, ...context }, `${task} failed; retried at its next run`);
  }

  /** `callback`, with anything it throws reported instead of thrown; for timers and event listeners. */
  guard<Args extends unknown[]>(task: BackgroundTask, callback: (...args: Args) => void): (...args: Args) => void {
    return (...args) => {
      try {
        callback(...args);
      } catch (error) {
        this.report(task, error);
      }
    };
  }
}
