/**
 * The timing the drain stage's two loops share (the drainer and the announcer): look for work
 * on the next turn when woken, or at a time; stop; tell those waiting once nothing is left; and a
 * pause after a dependency failed as a whole, one step longer for each failure in a row (jittered
 * backoff, at most 5 s: one try every 5 s costs the dependency nothing, and work resumes within 5 s
 * of its return). A look that throws is reported by the caller's `onError` and pauses the loop; it
 * never ends the process (I11).
 */
import type { BackgroundErrors, BackgroundTask } from '../background-errors.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';

/**
 * Longest pause between tries of a dependency that is down. One try every 5 s costs it nothing,
 * and the backlog starts moving within 5 s of its return (with the retry maximum's 60 s, a 30 s
 * storage outage used to leave the drainer idle for up to half a minute more).
 */
const OUTAGE_PROBE_MAX_MS = 5_000;

export class WorkLoop {
  private timer: NodeJS.Timeout | undefined;
  private woken = false;
  private emptyWaiters: (() => void)[] = [];
  private isStopped = false;
  /** Steps of the pause; 0 while the dependency is not considered down. */
  private failuresInARow = 0;
  /** Nothing is looked for before this time (ms since epoch). */
  private pausedUntil = 0;

  constructor(
    private readonly look: () => void,
    private readonly onError: (error: unknown) => void,
    private readonly retry: BackoffPolicy,
  ) {}

  get stopped(): boolean {
    return this.isStopped;
  }

  /** True while a failure of the dependency as a whole holds the loop. */
  get paused(): boolean {
    return this.failuresInARow > 0;
  }

  /** Look for work on the next turn rather than at the scheduled time. */
  wake(): void {
    if (this.stopped || this.woken) return;
    this.woken = true;
    setImmediate(() => {
      this.woken = false;
      this.run();
    });
  }

  /** Look for work at `at` (ms since epoch), instead of any time scheduled before. */
  schedule(at: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), Math.max(0, at - Date.now()));
  }

  stop(): void {
    this.isStopped = true;
    clearTimeout(this.timer);
  }

  /** Resolves true once `empty()` is called (nothing left), or false when `deadline` (ms since epoch) passes first. */
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

  /** Nothing is left to do: tells those waiting in `untilEmpty`. */
  empty(): void {
    const waiters = this.emptyWaiters;
    this.emptyWaiters = [];
    for (const notify of waiters) notify();
  }

  /**
   * The dependency failed as a whole: one more step of pause (failures that come together, from
   * work that was under way together, take one step). Returns the delay.
   */
  pause(): number {
    const now = Date.now();
    if (now < this.pausedUntil) return this.pausedUntil - now;
    this.failuresInARow += 1;
    const delay = Math.min(OUTAGE_PROBE_MAX_MS, backoffDelay(this.retry, this.failuresInARow));
    this.pausedUntil = now + delay;
    this.schedule(this.pausedUntil);
    return delay;
  }

  /** Nothing is looked for during the next `ms`, without a step of pause. */
  holdFor(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
  }

  /** The dependency answers again: no pause from the next look on. */
  resume(): void {
    this.failuresInARow = 0;
    this.pausedUntil = 0;
    this.wake();
  }

  private run(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    if (Date.now() < this.pausedUntil) {
      this.schedule(this.pausedUntil);
      return;
    }
    try {
      this.look();
    } catch (error) {
      this.onError(error);
      if (!this.stopped) this.pause();
    }
  }
}

/**
 * A stage of the drain run by a WorkLoop (the drainer, the announcer): what it shows of the loop to
 * the process that runs it. A look for work that throws is reported as `task` (I11).
 */
export abstract class LoopedStage {
  protected readonly loop: WorkLoop;

  constructor(task: BackgroundTask, errors: Pick<BackgroundErrors, 'report'>, retry: BackoffPolicy) {
    this.loop = new WorkLoop(() => this.lookForWork(), (error) => errors.report(task, error), retry);
  }

  /** Starts what is due and schedules the next look; runs from the loop's timers. */
  protected abstract lookForWork(): void;

  start(): void {
    this.wake();
  }

  /** Look for work now rather than at the next timer. */
  wake(): void {
    this.loop.wake();
  }

  /** True while a failure of the dependency as a whole (storage, the queue) holds the stage. */
  get paused(): boolean {
    return this.loop.paused;
  }

  /** Resolves true once nothing is left to do, or false when `deadline` (ms since epoch) passes first. */
  untilEmpty(deadline: number): Promise<boolean> {
    return this.loop.untilEmpty(deadline);
  }

  /** Starts nothing more; what is in flight is abandoned: its crashes stay in the spool for the next start. */
  stop(): void {
    this.loop.stop();
  }
}
