/**
 * Per-crash retries kept in memory, shared by the drainer (a storage failure of one crash) and the
 * announcer (a queue failure of one crash): after each failure the crash waits out a jittered
 * backoff (backoff.ts) before it is started again. Failures kept here never count toward the
 * dead-letter state; those that do are written on the crash in the spool.
 *
 * Bounded: an entry long past due belongs to a crash that left the spool another way (an
 * operator's purge) and is dropped; past `maxEntries` the oldest entry is dropped. Dropping an
 * entry only lets its crash be tried again sooner.
 */
import { backoffDelay, type BackoffPolicy } from './backoff.js';

/** An entry this long past due belongs to a crash that is gone from the spool. */
const STALE_MS = 10 * 60_000;
/** ~100 bytes each: a few MiB at most, whatever the backlog. */
const MAX_ENTRIES = 50_000;

export class RetrySchedule {
  /** Row number (never reused, I7) → when to try again (ms since epoch), failures in a row. */
  private readonly entries = new Map<number, { at: number; failures: number }>();

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly maxEntries = MAX_ENTRIES,
  ) {}

  /** Crashes waiting out a delay, or due again and not yet tried. */
  get size(): number {
    return this.entries.size;
  }

  /** One more failure of the crash in a row: its delay before the next try, and the failures so far. */
  failed(seq: number, now = Date.now()): { delay: number; failures: number } {
    const failures = (this.entries.get(seq)?.failures ?? 0) + 1;
    const delay = backoffDelay(this.policy, failures);
    // Re-inserted, so the map's first entry stays the one longest untouched.
    this.entries.delete(seq);
    this.entries.set(seq, { at: now + delay, failures });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return { delay, failures };
  }

  /** The crash is done with (stored, announced, dead-lettered, or gone). */
  forget(seq: number): void {
    this.entries.delete(seq);
  }

  /** Crashes not to start at `now`: those in `busy`, and those waiting out their delay. */
  notStartable(now: number, busy: Iterable<number>): Set<number> {
    const skip = new Set(busy);
    for (const [seq, entry] of this.entries) {
      if (entry.at > now) skip.add(seq);
      else if (now - entry.at > STALE_MS) this.entries.delete(seq);
    }
    return skip;
  }

  /** The earliest retry time after `now`, if any. */
  nextAt(now: number): number | undefined {
    let next: number | undefined;
    for (const { at } of this.entries.values()) if (at > now && (next === undefined || at < next)) next = at;
    return next;
  }
}
