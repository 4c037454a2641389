/**
 * A queue's answer to one publish, held against the batch that was sent (pure). A queue server
 * may answer nonsense — entries never sent, an entry twice, one in both lists, none at all — and
 * nothing it says may delete a crash it did not confirm (I13) or throw out of the announcer (I11).
 */
import type { EntryFailure, PublishResult } from '../queue/publisher.js';

export interface EntryRefusal<Crash> {
  crash: Crash;
  error: string;
  /** As metrics count it; `unaccounted`: in neither list of the answer. */
  reason: EntryFailure['reason'] | 'unaccounted';
  scope: EntryFailure['scope'];
}

export interface AccountedAnswer<Crash> {
  /** Confirmed and in no failure: these may leave the spool. */
  confirmed: Crash[];
  /** Refused, or accounted for in neither list (a failure of the queue: tried again, never counted against the crash). */
  refused: EntryRefusal<Crash>[];
  /** What the answer named that was never sent: ignored. */
  unknown: string[];
  /** True when the answer accounts for no entry at all (then the call as a whole failed). */
  accountsForNone: boolean;
}

export function accountFor<Crash extends { crashId: string }>(batch: readonly Crash[], result: PublishResult): AccountedAnswer<Crash> {
  const sent = new Map(batch.map((crash) => [crash.crashId, crash]));
  const answered = new Set<string>();
  const unknown = [...result.unknown];
  const refused: EntryRefusal<Crash>[] = [];
  // Failures first: a crash the answer puts in both lists is not taken as confirmed (a repeat is harmless, a loss is not).
  for (const failure of result.failed) {
    const crash = sent.get(failure.crashId);
    if (!crash) unknown.push(failure.crashId);
    else if (!answered.has(failure.crashId)) {
      answered.add(failure.crashId);
      refused.push({ crash, error: failure.error, reason: failure.reason, scope: failure.scope });
    }
  }
  const confirmed: Crash[] = [];
  for (const crashId of result.published) {
    const crash = sent.get(crashId);
    if (!crash) unknown.push(crashId);
    else if (!answered.has(crashId)) {
      answered.add(crashId);
      confirmed.push(crash);
    }
  }
  const accountsForNone = answered.size === 0;
  for (const crash of batch) {
    if (!answered.has(crash.crashId)) refused.push({ crash, error: 'the queue answered without this entry', reason: 'unaccounted', scope: 'queue' });
  }
  return { confirmed, refused, unknown, accountsForNone };
}
